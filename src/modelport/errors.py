"""The exception tree.

Every error a user can cause is a :class:`ModelportError`. Each carries a transport-neutral
``status`` (an HTTP-like code) so that one HTTP handler and one CLI handler can translate all of
them. Library errors are wrapped with ``raise ... from exc`` so the cause stays visible.
"""

from __future__ import annotations


class ModelportError(Exception):
    """Base class of every modelport error. ``status`` follows HTTP semantics."""

    status: int = 500

    def __init__(self, message: str, details: list[dict[str, object]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []


class InvalidReference(ModelportError):
    """A model reference such as ``credit@production`` could not be parsed."""

    status = 400


class ModelNotFound(ModelportError):
    """No model, version or alias matches the reference."""

    status = 404


class AliasNotFound(ModelNotFound):
    """The alias does not exist for that model."""


class SchemaMismatch(ModelportError):
    """Input data does not fit the model's signature."""

    status = 422


class InvalidInput(ModelportError):
    """A data file or payload is missing, in an unsupported format, or cannot be parsed."""

    status = 400


class FlavorError(ModelportError):
    """The model object or file is not supported, or its framework is missing."""

    status = 400


class ArtifactTampered(ModelportError):
    """A stored artifact no longer matches the sha256 recorded at registration."""

    status = 409


class RegistrationError(ModelportError):
    """Registration failed; nothing was published."""

    status = 400


class StoreError(ModelportError):
    """The metadata database or artifact store could not be used."""

    status = 503


class DependencyMismatchWarning(UserWarning):
    """The installed framework version differs from the one the model was registered with."""


class CompileWarning(UserWarning):
    """The automatic ONNX twin of a version is not used (no converter, or the parity gate failed):
    the version keeps the native runtime; the message says why."""


class ExtraColumnsWarning(UserWarning):
    """Input had columns the signature does not know; they were ignored."""


class Overloaded(ModelportError):
    """The server sheds this request: its model's queue is full or the wait would exceed the SLA.

    ``retry_after`` (seconds) becomes the HTTP ``Retry-After`` header of the 503; ``wait`` is the
    expected wait (seconds) that made the server shed it.
    """

    status = 503

    def __init__(self, message: str, retry_after: float = 1.0, wait: float = 0.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.wait = wait
