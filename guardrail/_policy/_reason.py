"""Reason templates: ``"supplier {boundary.external_hosts} is not approved"``.

Placeholders are dotted paths into the facts a condition sees, checked at load and rendered
by lookup, never by ``str.format`` on live objects (which would let a template reach
attributes such as ``__class__``). Values are shortened, stripped of control characters and
replaced by ``[redacted]`` where the call's logging requirements or scanners say so.
"""

from __future__ import annotations

import difflib
import re
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from guardrail._policy._expr import ROOTS

_PATH = re.compile(r"^(?!_)\w+(?:\.(?!__)[A-Za-z_]\w*)*$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_MAX_VALUE = 80


@dataclass(frozen=True, slots=True)
class ReasonTemplate:
    """A parsed template: literal text and placeholder paths, in order."""

    parts: tuple[tuple[str, str | None], ...]

    def render(self, facts: Mapping[str, Any], hidden: Callable[[str], bool]) -> str:
        """Fill the placeholders from ``facts``; ``hidden(path)`` marks values to withhold."""
        out: list[str] = []
        for literal, path in self.parts:
            out.append(literal)
            if path is not None:
                out.append("[redacted]" if hidden(path) else _show(_lookup(facts, path)))
        return "".join(out)

    def fill(self, facts: Mapping[str, Any], show: Callable[[Any], str]) -> str:
        """Fill the placeholders with ``show(value)`` (a URL quoter, say); no truncation.

        Raises:
            KeyError: a placeholder names a value the facts do not have.
        """
        out: list[str] = []
        for literal, path in self.parts:
            out.append(literal)
            if path is not None:
                value = _lookup(facts, path)
                if value == "<missing>":
                    raise KeyError(path)
                out.append(show(value))
        return "".join(out)


def parse_template(text: str) -> ReasonTemplate | str:
    """Parse ``text``; return the template or a message saying what is wrong."""
    try:
        pieces = list(string.Formatter().parse(text))
    except ValueError as err:
        return f"reason template is malformed ({err}); write {{{{ and }}}} for literal braces"
    parts: list[tuple[str, str | None]] = []
    for literal, field, spec, conversion in pieces:
        if field is None:
            parts.append((literal, None))
            continue
        if spec or conversion or not _PATH.match(field):
            return f"placeholder {{{field}}} must be a plain dotted path such as {{args.amount}}"
        root = field.split(".", 1)[0]
        if root not in ROOTS:
            near = difflib.get_close_matches(root, ROOTS, n=1)
            hint = f" (did you mean '{near[0]}'?)" if near else ""
            return f"placeholder {{{field}}} starts with unknown name '{root}'{hint}"
        parts.append((literal, field))
    return ReasonTemplate(tuple(parts))


def _lookup(facts: Mapping[str, Any], path: str) -> Any:
    value: Any = facts
    for key in path.split("."):
        if not isinstance(value, Mapping) or key not in value:
            return "<missing>"
        value = value[key]
    return value


def _show(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        text = ", ".join(_show(v) for v in value) or "none"
    elif value is None:
        text = "none"
    else:
        text = str(value)
    text = _CONTROL.sub("?", text)
    return text if len(text) <= _MAX_VALUE else text[: _MAX_VALUE - 1] + "…"
