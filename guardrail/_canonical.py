"""Arguments as the policy sees them: JSON-like values, taken as they come, within limits.

Nothing is coerced into passing: strings stay strings, booleans stay booleans. Values a bound
could be fooled by (NaN, infinities, integers beyond 64 bits) and inputs too large or deep to
judge are refused, which the guard turns into a deny.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import math
from collections.abc import Callable, Mapping
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

MAX_DEPTH = 32
MAX_ITEMS = 10_000
MAX_TEXT = 1_000_000
_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1
# Unicode tag characters carry invisible ASCII ("ASCII smuggling"); bidi overrides reorder text.
_SMUGGLING = frozenset(range(0xE0000, 0xE0080)) | {0x202A, 0x202B, 0x202C, 0x202D, 0x202E}


class ArgumentRefused(ValueError):
    """An argument cannot be judged; ``path`` says which (``args.amount``)."""

    def __init__(self, path: str, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"{path}: {problem}")


class _Budget:
    __slots__ = ("items", "text")

    def __init__(self) -> None:
        self.items = 0
        self.text = 0


def canonical_args(args: Mapping[str, object]) -> dict[str, Any]:
    """Return ``args`` as plain JSON-like values, or raise `ArgumentRefused`."""
    if not isinstance(args, Mapping):
        raise ArgumentRefused("args", f"arguments must be a mapping, not {type(args).__name__}")
    return _mapping(args, "args", 0, _Budget())


def _canonical(value: object, path: str, depth: int, budget: _Budget) -> Any:
    if depth > MAX_DEPTH:
        raise ArgumentRefused(path, f"nested deeper than {MAX_DEPTH} levels")
    budget.items += 1
    if budget.items > MAX_ITEMS:
        raise ArgumentRefused(path, f"more than {MAX_ITEMS} values in one call")
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return _integer(value, path)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ArgumentRefused(path, f"{value!r} is not a finite number")
        return value
    if isinstance(value, str):
        return _text(value, path, budget)
    if isinstance(value, Mapping):
        return _mapping(value, path, depth, budget)
    if isinstance(value, (list, tuple)):
        return [_canonical(v, f"{path}[{i}]", depth + 1, budget) for i, v in enumerate(value)]
    return _canonical(_plain(value, path), path, depth, budget)


def _integer(value: int, path: str) -> int:
    # compare before any conversion: str(10**5000) itself raises in CPython
    if not _INT_MIN <= value <= _INT_MAX:
        raise ArgumentRefused(path, "integer outside the 64-bit range")
    return int(value)


def _text(value: str, path: str, budget: _Budget) -> str:
    budget.text += len(value)
    if budget.text > MAX_TEXT:
        raise ArgumentRefused(path, f"more than {MAX_TEXT} characters of text in one call")
    if not _SMUGGLING.isdisjoint(map(ord, value)):
        raise ArgumentRefused(path, "contains invisible Unicode tag or bidi-override characters")
    return str(value)


def _mapping(value: Mapping[Any, Any], path: str, depth: int, budget: _Budget) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, item in value.items():
        if not isinstance(key, str):
            raise ArgumentRefused(path, f"key {key!r} is not a string")
        out[str(key)] = _canonical(item, f"{path}.{key}", depth + 1, budget)
    return out


def _plain(value: object, path: str) -> object:
    """Turn well-known Python value types into JSON-like ones; refuse the rest."""
    dump = getattr(value, "model_dump", None)
    if callable(dump):  # pydantic models
        return dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, Decimal) and value.is_finite():
        return float(value)
    raise ArgumentRefused(
        path, f"a {type(value).__name__} cannot be judged; pass JSON-like values (str, number, ...)"
    )


def redact_paths(
    value: Any, paths: frozenset[str], mask: Callable[[Any], Any], path: str = "args"
) -> Any:
    """A copy of ``value`` with the value at every listed path replaced by ``mask(value)``."""
    if path in paths:
        return mask(value)
    if isinstance(value, Mapping):
        return {k: redact_paths(v, paths, mask, f"{path}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [redact_paths(v, paths, mask, f"{path}[{i}]") for i, v in enumerate(value)]
    return value


def canonical_json(value: object) -> str:
    """One spelling for one value: sorted keys, no spaces, no NaN."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def digest(value: object) -> str:
    """``sha256:<hex>`` of the canonical JSON of ``value``."""
    return "sha256:" + hashlib.sha256(canonical_json(value).encode()).hexdigest()
