"""Turning a verdict into a Decision: rule ids, reasons for people, instructions for agents."""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from guardrail._extract import UNKNOWN
from guardrail._model import (
    CredentialGrant,
    Decision,
    Effect,
    Facts,
    LoggingRequirement,
    ToolCall,
)
from guardrail._policy import OutcomePolicy, Rule

MAX_TOOL_NAME = 128
_BAD_NAME_CATEGORIES = frozenset({"Cc", "Cf", "Co", "Cs", "Cn", "Zl", "Zp", "Zs"})


@dataclass(frozen=True, slots=True)
class Verdict:
    effect: Effect
    rules: tuple[Rule, ...]  # the rules that matched and decided
    errors: tuple[str, ...]
    errored: tuple[Rule, ...] = ()  # rules that could not be evaluated (each denies)
    notes: Mapping[str, str] = field(default_factory=dict)  # why a deny rule applied anyway


def new_id() -> str:
    # 128 random bits, like uuid4, without building a UUID object on the hot path
    return os.urandom(16).hex()


def normalize_tool_name(name: object) -> str | None:
    """NFKC form of a tool name, or None when it cannot be a tool name at all."""
    if not isinstance(name, str) or not name or len(name) > MAX_TOOL_NAME:
        return None
    if name.isascii() and name.isprintable() and " " not in name:
        return name  # already NFKC, and no control, format or space characters
    normal = unicodedata.normalize("NFKC", name)
    if any(unicodedata.category(c) in _BAD_NAME_CATEGORIES for c in normal):
        return None
    return normal


def build(
    policy: OutcomePolicy,
    call: ToolCall,
    decision_id: str,
    args_digest: str,
    facts: Facts,
    activation: dict[str, Any],
    verdict: Verdict,
    fixed: tuple[str, str] | None = None,
) -> Decision:
    logging = facts.logging
    for rule in verdict.rules:
        if rule.logging is not None:
            logging = logging.merge(rule.logging)
    if logging is not facts.logging:
        facts = replace(facts, logging=logging)
    hidden = _hider(logging)
    rule_ids: tuple[str, ...]
    if fixed is not None:
        rule_ids, reason = (fixed[0],), fixed[1]
    elif verdict.errors and not verdict.rules:
        rule_ids = tuple(r.id for r in verdict.errored) or ("guardrail:error",)
        reason = "; ".join(verdict.errors)
    elif verdict.rules:
        rule_ids = tuple(r.id for r in (*verdict.rules, *verdict.errored))
        reasons = [_reason(r, activation, hidden, verdict.notes) for r in verdict.rules]
        reason = "; ".join(dict.fromkeys(reasons))  # each reason once, in rule order
    else:
        rule_ids = (f"guardrail:default-{policy.default.value}",)
        reason = default_reason(facts) + anonymous_hint(activation["principal"]["id"])
    instruction = _instruction(verdict, facts.tool, reason, activation, hidden)
    return Decision(
        effect=verdict.effect,
        tool=facts.tool,
        call_id=call.id,
        rule_ids=rule_ids,
        reason=reason,
        instruction=instruction,
        policy_name=policy.name,
        policy_version=policy.version,
        policy_digest=policy.digest,
        args_digest=args_digest,
        decision_id=decision_id,
        facts=facts,
        controls=tuple(sorted({c for r in verdict.rules for c in r.controls})),
        errors=verdict.errors,
        credential=_grant(verdict),
    )


def _grant(verdict: Verdict) -> CredentialGrant | None:
    """The credential the deciding rules ask for: the shortest-lived if several do."""
    if verdict.effect is Effect.DENY:
        return None
    grants = [r.credential for r in verdict.rules if r.credential is not None]
    return min(grants, key=lambda g: g.ttl_s) if grants else None


def _reason(
    rule: Rule,
    activation: dict[str, Any],
    hidden: Callable[[str], bool],
    notes: Mapping[str, str],
) -> str:
    note = notes.get(rule.id)
    text = rule.reason.render(activation, hidden) if rule.reason else None
    if text is None or (note and "<missing>" in text):
        text = note or f"rule '{rule.id}' ({rule.effect.value})"
    elif note:
        text = f"{text} ({note})"
    return text


def default_reason(facts: Facts) -> str:
    if facts.intent == UNKNOWN:
        return (
            f"tool '{facts.tool}' has no known intent; declare one with "
            f"@guard.tool(intent=...) or map it under 'tools:' in the policy"
        )
    return f"no rule allows intent '{facts.intent}' for tool '{facts.tool}' (default deny)"


def anonymous_hint(principal_id: str) -> str:
    """A hint for the commonest surprise: a call made outside any task has no principal."""
    if principal_id != "anonymous":
        return ""
    return (
        "; the call was made outside any guard.task(...), as principal 'anonymous': "
        "enter a task with a principal, or pass principal=..."
    )


def _instruction(
    verdict: Verdict,
    tool: str,
    reason: str,
    activation: dict[str, Any],
    hidden: Callable[[str], bool],
) -> str:
    custom = next((r.instruction for r in verdict.rules if r.instruction is not None), None)
    if custom is not None:
        return custom.render(activation, hidden)
    if verdict.effect is Effect.ALLOW:
        return f"The call to `{tool}` is allowed."
    if verdict.effect is Effect.CONFIRM:
        return (
            f"The call to `{tool}` needs a human approval ({reason}). Do not retry it; "
            f"ask the user to approve it."
        )
    return (
        f"The call to `{tool}` was blocked by policy ({reason}). Do not retry it with the "
        f"same arguments; tell the user why, or ask them how to proceed."
    )


def _hider(logging: LoggingRequirement) -> Callable[[str], bool]:
    hidden = logging.redact

    def is_hidden(path: str) -> bool:
        return any(
            h == path
            or h.startswith((path + ".", path + "["))
            or path.startswith((h + ".", h + "["))
            for h in hidden
        )

    return is_hidden


def refusal(
    policy: OutcomePolicy,
    call: ToolCall,
    rule_id: str,
    reason: str,
    *,
    errors: tuple[str, ...] = (),
) -> Decision:
    """A deny reached before any facts exist (bad name, refused arguments, internal error)."""
    return fixed(policy, call, new_id(), rule_id, reason, errors)


def fixed(
    policy: OutcomePolicy,
    call: ToolCall,
    decision_id: str,
    rule_id: str,
    reason: str,
    errors: tuple[str, ...] = (),
) -> Decision:
    tool = normalize_tool_name(call.tool) or repr(call.tool)[:MAX_TOOL_NAME]
    return Decision(
        effect=Effect.DENY,
        tool=tool,
        call_id=str(call.id),
        rule_ids=(rule_id,),
        reason=reason,
        instruction=(
            f"The call to `{tool}` was blocked ({reason}). Do not retry it as is; "
            f"fix the call or ask the user."
        ),
        policy_name=policy.name,
        policy_version=policy.version,
        policy_digest=policy.digest,
        args_digest="",
        decision_id=decision_id,
        errors=errors,
    )
