"""Resource quantities (k8s.io/apimachinery/pkg/api/resource): `500m`, `1Gi`, `2e3`, `128974848`.

`parse_quantity(text)` returns an exact `Decimal` or raises ValueError with Kubernetes' message
`quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'`.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

QUANTITY_REGEX = "^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"
QUANTITY_FORMAT_MSG = f"quantities must match the regular expression '{QUANTITY_REGEX}'"

_RX = re.compile(r"([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)")
_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
}


def parse_quantity(value: Any) -> Decimal:
    """Parse a quantity (string or number) into its exact value."""
    if isinstance(value, bool):
        raise ValueError(QUANTITY_FORMAT_MSG)
    if isinstance(value, int | float):
        return Decimal(str(value))
    text = str(value).strip()
    m = _RX.fullmatch(text)
    if not m or text.count(".") > 1:
        raise ValueError(QUANTITY_FORMAT_MSG)
    number, suffix = m.group(1), m.group(2)
    try:
        num = Decimal(number)
    except InvalidOperation as exc:
        raise ValueError(QUANTITY_FORMAT_MSG) from exc
    if suffix in _BINARY:
        return num * _BINARY[suffix]
    if suffix in _DECIMAL:
        return num * _DECIMAL[suffix]
    em = re.fullmatch(r"[eE]([-+]?[0-9]+)", suffix)
    if em:
        return num * (Decimal(10) ** int(em.group(1)))
    raise ValueError("unable to parse quantity's suffix")
