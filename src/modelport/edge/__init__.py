"""Compiled runtime and edge export: ONNX twins of registered models behind a parity gate."""

from modelport.edge.compile import compile_version
from modelport.edge.parity import ParityReport, Tolerance

__all__ = ["ParityReport", "Tolerance", "compile_version"]
