"""The policy language: YAML documents compiled into an immutable OutcomePolicy."""

from guardrail._policy._compiled import Example, OutcomePolicy, Provider, Rule, ToolSpec
from guardrail._policy._load import load_policy, parse_policy

__all__ = [
    "Example",
    "OutcomePolicy",
    "Provider",
    "Rule",
    "ToolSpec",
    "load_policy",
    "parse_policy",
]
