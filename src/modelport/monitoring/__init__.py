"""Monitoring: drift, data quality and performance of deployed models over time."""
