"""Exceptions raised by guardrail.

```
GuardrailError
├── PolicyError(ValueError)         a policy cannot be loaded; .problems lists every finding
├── ConfigurationError(TypeError)   the API was used wrongly (bad arguments, duplicate tool names)
└── ToolCallDenied                  a guarded call was not allowed; .decision says why
```

Decisions themselves are values (`Decision`); only misuse, broken policies and denials in
``on_deny="raise"`` mode are exceptions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from guardrail._model import Decision


class GuardrailError(Exception):
    """Base class of every error guardrail raises."""


@dataclass(frozen=True, slots=True)
class PolicyProblem:
    """One finding in a policy file: what is wrong, where, and how to fix it."""

    path: str
    line: int | None
    message: str
    fix: str
    rule_id: str | None = None

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else self.path
        rule = f" rule '{self.rule_id}':" if self.rule_id else ""
        return f"{where}:{rule} {self.message}. Fix: {self.fix}"


class PolicyError(GuardrailError, ValueError):
    """A policy could not be loaded; every problem found is in ``problems``."""

    def __init__(self, problems: list[PolicyProblem]) -> None:
        self.problems = tuple(problems)
        count = len(self.problems)
        head = f"policy refused: {count} problem{'s' if count != 1 else ''}"
        super().__init__("\n".join([head, *(f"  {p}" for p in self.problems)]))


class ConfigurationError(GuardrailError, TypeError):
    """The guardrail API was called with arguments it cannot use."""


class ToolCallDenied(GuardrailError):
    """A guarded tool call was denied or not confirmed; ``decision`` carries the reasons."""

    def __init__(self, decision: Decision) -> None:
        self.decision = decision
        super().__init__(decision.instruction)
