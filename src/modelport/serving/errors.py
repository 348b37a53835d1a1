"""Errors that only the HTTP transport can raise (the rest come from :mod:`modelport.errors`)."""

from __future__ import annotations

from modelport.errors import InvalidInput, ModelportError


class PayloadTooLarge(InvalidInput):
    """The request body is over the server's configured limit."""

    status = 413


class UnsupportedMediaType(InvalidInput):
    """The request's Content-Type is not one this endpoint reads."""

    status = 415


class PredictionFailed(ModelportError):
    """The model itself raised on an input that passed signature validation."""

    status = 422
