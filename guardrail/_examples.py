"""Policies are tested like code: each file's ``examples:`` are calls with expected decisions."""

from __future__ import annotations

from dataclasses import dataclass

from guardrail._guard import Guard
from guardrail._model import ANONYMOUS, NO_TASK, Decision, ToolCall
from guardrail._policy import Example, OutcomePolicy


@dataclass(frozen=True, slots=True)
class ExampleResult:
    """One example's outcome; ``problem`` says how it failed, None when it passed."""

    example: Example
    decision: Decision
    problem: str | None

    @property
    def passed(self) -> bool:
        """Whether the decision was the expected one."""
        return self.problem is None


def run_examples(policy: OutcomePolicy) -> list[ExampleResult]:
    """Decide every example of ``policy`` and compare with what it expects."""
    guard = Guard(policy)
    results = []
    for ex in policy.examples:
        decision = guard.decide(
            ToolCall(ex.tool, dict(ex.args)),
            principal=ex.principal or ANONYMOUS,
            task=ex.task or NO_TASK,
        )
        problem = None
        if decision.effect is not ex.expect:
            problem = (
                f"expected {ex.expect.value}, got {decision.effect.value} "
                f"by {', '.join(decision.rule_ids)}: {decision.reason}"
            )
        elif ex.rule is not None and ex.rule not in decision.rule_ids:
            problem = f"expected rule '{ex.rule}' to decide, got {', '.join(decision.rule_ids)}"
        results.append(ExampleResult(ex, decision, problem))
    return results
