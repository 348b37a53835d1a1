"""Model references: ``name`` (latest), ``name:VERSION`` and ``name@ALIAS``."""

from __future__ import annotations

import re
from dataclasses import dataclass

from modelport.errors import InvalidReference

_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}"
_NAME_RE = re.compile(rf"^{_NAME}$")
_REF_RE = re.compile(rf"^(?P<name>{_NAME})(?:(?::(?P<version>\d+))|(?:@(?P<alias>{_NAME})))?$")


@dataclass(frozen=True)
class ModelRef:
    """A parsed reference. Exactly one of ``version``/``alias`` is set, or neither (latest).

    >>> ModelRef.parse("credit@production")
    ModelRef(name='credit', version=None, alias='production')
    """

    name: str
    version: int | None = None
    alias: str | None = None

    @classmethod
    def parse(cls, ref: str | ModelRef) -> ModelRef:
        if isinstance(ref, ModelRef):
            return ref
        if not isinstance(ref, str):
            raise InvalidReference(f"A model reference must be a string, got {type(ref).__name__}.")
        m = _REF_RE.match(ref.strip())
        if not m:
            raise InvalidReference(
                f"Invalid model reference {ref!r}. Use 'name', 'name:VERSION' or 'name@ALIAS' "
                "(letters, digits, '.', '_' and '-')."
            )
        version = m.group("version")
        return cls(m.group("name"), int(version) if version else None, m.group("alias"))

    def __str__(self) -> str:
        if self.version is not None:
            return f"{self.name}:{self.version}"
        if self.alias is not None:
            return f"{self.name}@{self.alias}"
        return self.name


def check_name(name: str, what: str = "model name") -> str:
    """Validate a model or alias name and return it."""
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise InvalidReference(
            f"Invalid {what} {name!r}: use 1-128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit."
        )
    if what == "alias" and name.isdigit():
        raise InvalidReference(f"Invalid alias {name!r}: an alias cannot be a plain number.")
    return name
