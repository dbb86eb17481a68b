"""The policy language: YAML documents compiled into an immutable OutcomePolicy."""

from guardrail._policy._compiled import Example, OutcomePolicy, Rule, ToolSpec
from guardrail._policy._load import load_policy, parse_policy

__all__ = ["Example", "OutcomePolicy", "Rule", "ToolSpec", "load_policy", "parse_policy"]
