"""Quantities: the canonical texts kube-apiserver returns, and its parse errors."""

from __future__ import annotations

import pytest

from pykube_server.api.quantity import (
    ERR_FORMAT_WRONG, ERR_SUFFIX, QuantityError, canonical, compare, is_quantity, parse_quantity,
)


@pytest.mark.parametrize(("text", "expected"), [
    ("100m", "100m"), ("0.5", "500m"), (0.5, "500m"), ("1", "1"), (2, "2"), ("1000m", "1"),
    ("1500m", "1500m"), ("2000", "2k"), ("1Gi", "1Gi"), ("1024Mi", "1Gi"), ("1536Mi", "1536Mi"),
    ("0.5Gi", "512Mi"), ("0.5Ki", "512"), ("1e3", "1e3"), ("1E3", "1e3"), ("1.5e3", "1500"),
    ("12e6", "12e6"), ("0", "0"), ("0Gi", "0"), ("-1", "-1"), ("+5", "5"), ("1.", "1"),
    ("1M", "1M"), ("1000k", "1M"), ("128974848", "128974848"), ("129e6", "129e6"), ("123Mi", "123Mi"),
    ("1n", "1n"), ("0.0000000001", "1n"), ("100u", "100u"), ("1.5Gi", "1536Mi"), ("10Ei", "10Ei"),
])
def test_canonical_text(text: str | int | float, expected: str) -> None:
    assert canonical(text) == expected


@pytest.mark.parametrize(("text", "message"), [
    ("", ERR_FORMAT_WRONG), ("abc", ERR_FORMAT_WRONG), ("1 Gi", ERR_FORMAT_WRONG), ("1.2.3", ERR_FORMAT_WRONG),
    ("Gi", ERR_FORMAT_WRONG), ("1GB", ERR_FORMAT_WRONG), ("1Gib", ERR_FORMAT_WRONG), ("1e", ERR_SUFFIX),
    ("1kk", ERR_SUFFIX), ("1mi", ERR_SUFFIX), (".", ERR_FORMAT_WRONG),
])
def test_invalid_quantities_give_apimachinery_messages(text: str, message: str) -> None:
    with pytest.raises(QuantityError) as err:
        parse_quantity(text)
    assert str(err.value) == message
    assert not is_quantity(text)


def test_format_wrong_message_is_the_real_text() -> None:
    assert ERR_FORMAT_WRONG == "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"


@pytest.mark.parametrize(("a", "b", "result"), [
    ("1", "1000m", 0), ("500m", "1", -1), ("1Gi", "1G", 1), ("1Ki", "1k", 1), ("2", "1.5", 1), ("1e3", "1k", 0),
])
def test_compare(a: str, b: str, result: int) -> None:
    assert compare(a, b) == result


def test_values() -> None:
    q = parse_quantity("1.5")
    assert q.milli_value() == 1500 and q.int_value() == 2
    assert parse_quantity("1Gi").int_value() == 1 << 30
