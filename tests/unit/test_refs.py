from __future__ import annotations

import pytest

from modelport.errors import InvalidReference
from modelport.refs import ModelRef, check_name


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("credit", ModelRef("credit")),
        ("credit:3", ModelRef("credit", version=3)),
        ("credit@production", ModelRef("credit", alias="production")),
        ("fraud-v2.x_1@canary", ModelRef("fraud-v2.x_1", alias="canary")),
    ],
)
def test_parse(text: str, expected: ModelRef) -> None:
    assert ModelRef.parse(text) == expected
    assert str(ModelRef.parse(text)) == text


@pytest.mark.parametrize("bad", ["", "credit:", "credit@", "credit:x", "cr edit", "-x", "a:1@b", "a/b"])
def test_invalid(bad: str) -> None:
    with pytest.raises(InvalidReference, match="name:VERSION"):
        ModelRef.parse(bad)


def test_alias_cannot_be_numeric() -> None:
    with pytest.raises(InvalidReference, match="plain number"):
        check_name("3", "alias")
