"""The decision function: Facts and a compiled policy in, a Decision out. Total and pure.

Precedence is deny > confirm > allow; with no matching rule the policy's default (deny)
applies. Any error (a refused argument, a condition that cannot be evaluated, a time
budget overrun) is a deny that says what failed.
"""

from __future__ import annotations

import os
import threading
import time
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import cel

from guardrail._canonical import ArgumentRefused, canonical_args, digest
from guardrail._context import ContextFacts
from guardrail._extract import UNKNOWN, extract
from guardrail._model import (
    CredentialGrant,
    Decision,
    Effect,
    Facts,
    LoggingRequirement,
    Principal,
    Task,
    ToolCall,
)
from guardrail._policy import OutcomePolicy, Rule, ToolSpec

MAX_TOOL_NAME = 128
_BAD_NAME_CATEGORIES = frozenset({"Cc", "Cf", "Co", "Cs", "Cn", "Zl", "Zp", "Zs"})


_SUBJECT_ROOTS = frozenset({"principal", "task", "context"})


@dataclass(frozen=True, slots=True)
class Subject:
    """Who acts and for which task, with their policy views computed once per task."""

    principal: Principal
    task: Task
    principal_facts: Mapping[str, Any]
    task_facts: Mapping[str, Any]
    _contexts: threading.local = field(default_factory=threading.local, compare=False, repr=False)

    @classmethod
    def of(cls, principal: Principal, task: Task) -> Subject:
        return cls(principal, task, principal.to_facts(), task.to_facts())

    def cel_context(self, roots: frozenset[str]) -> Any:
        """A CEL context holding this subject's share (principal, task, context) of ``roots``.

        Converting values into CEL is the costliest part of a decision, so the subject's
        share is converted at most once per thread; each call then adds only its own
        variables. One context per thread, because a decision writes its call's variables
        into it.
        """
        local = self._contexts
        if not hasattr(local, "value"):
            local.value, local.added = cel.Context(), set()
        for root in (roots & _SUBJECT_ROOTS) - local.added:
            local.value.add_variable(root, self._view(root))
            local.added.add(root)
        return local.value

    def forget(self, root: str) -> None:
        """This thread's context now holds a call's own ``root``; re-add the subject's next time."""
        added = getattr(self._contexts, "added", None)
        if added is not None:
            added.discard(root)

    def _view(self, root: str) -> Any:
        if root == "principal":
            return self.principal_facts
        if root == "task":
            return self.task_facts
        return dict(self.task.context)


@dataclass(frozen=True, slots=True)
class _Verdict:
    effect: Effect
    rules: tuple[Rule, ...]  # the rules that matched and decided
    errors: tuple[str, ...]
    errored: tuple[Rule, ...] = ()  # rules that could not be evaluated (each denies)
    notes: Mapping[str, str] = field(default_factory=dict)  # why a deny rule applied anyway


def _new_id() -> str:
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


def evaluate(
    policy: OutcomePolicy,
    call: ToolCall,
    subject: Subject,
    resolve: Callable[[str], ToolSpec | None],
    *,
    budget_s: float = 1.0,
) -> Decision:
    """Decide one call. Never raises; every failure becomes a deny."""
    return evaluate_call(policy, call, subject, resolve, budget_s=budget_s)[0]


ContextLoader = Callable[[frozenset[str], Mapping[str, Any]], ContextFacts]


def evaluate_call(
    policy: OutcomePolicy,
    call: ToolCall,
    subject: Subject,
    resolve: Callable[[str], ToolSpec | None],
    *,
    budget_s: float = 1.0,
    load_context: ContextLoader | None = None,
) -> tuple[Decision, dict[str, Any]]:
    """Decide one call and return the canonical arguments it was decided on ({} if refused).

    ``load_context`` fetches the live facts the call's rules need (the only I/O a decision
    may do, and only through it).
    """
    decision_id = _new_id()
    try:
        return _evaluate(
            policy, call, subject, resolve, decision_id, time.monotonic() + budget_s, load_context
        )
    except Exception as err:  # fail closed: whatever broke, the answer is deny
        return _fixed(
            policy,
            call,
            decision_id,
            "guardrail:error",
            f"the decision failed ({type(err).__name__}: {_short(err)})",
            errors=(f"{type(err).__name__}: {_short(err)}",),
        ), {}


def _evaluate(
    policy: OutcomePolicy,
    call: ToolCall,
    subject: Subject,
    resolve: Callable[[str], ToolSpec | None],
    decision_id: str,
    deadline: float,
    load_context: ContextLoader | None,
) -> tuple[Decision, dict[str, Any]]:
    tool = normalize_tool_name(call.tool)
    if tool is None:
        return _fixed(
            policy,
            call,
            decision_id,
            "guardrail:tool-name",
            "the tool name is empty, too long or holds invisible/control characters",
        ), {}
    try:
        args = canonical_args(call.args)
    except ArgumentRefused as err:
        return _fixed(
            policy,
            call,
            decision_id,
            "guardrail:arguments",
            f"argument {err.path} was refused: {err.problem}",
        ), {}
    args_digest = digest(args)
    facts = extract(tool, args, resolve(tool), policy, subject.task)
    activation: dict[str, Any] = {
        "args": args,
        "principal": subject.principal_facts,
        "task": subject.task_facts,
        "boundary": facts.boundary.to_facts(),
        "intent": facts.intent,
        "resource": facts.resource,
        "context": dict(subject.task.context),
        "state": {},
        "call": {"tool": tool, "id": call.id},
    }
    live = _live_context(policy, facts, subject, activation, load_context)
    if live is not None:
        activation["context"] = {**activation["context"], **live.values}
        facts = replace(facts, context=dict(live.summary))
    built_in = _task_checks(facts, subject.task)
    if built_in is not None:
        rule_id, reason = built_in
        return _build(
            policy,
            call,
            decision_id,
            args_digest,
            facts,
            activation,
            _Verdict(Effect.DENY, (), ()),
            fixed=(rule_id, reason),
        ), args
    verdict = _judge(policy, tool, facts, activation, subject, deadline, live)
    return _build(policy, call, decision_id, args_digest, facts, activation, verdict), args


def _live_context(
    policy: OutcomePolicy,
    facts: Facts,
    subject: Subject,
    activation: Mapping[str, Any],
    load_context: ContextLoader | None,
) -> ContextFacts | None:
    """Fetch what the rules for this intent read, unless the task already brought it."""
    if load_context is None:
        return None
    needed = policy.context_needed(facts.intent) - frozenset(subject.task.context)
    if not needed:
        return None
    return load_context(needed, activation)


def _task_checks(facts: Facts, task: Task) -> tuple[str, str] | None:
    if task.expired():
        return "guardrail:task-expired", f"task '{task.id}' expired at {task.expires_at}"
    if task.intents and facts.intent == UNKNOWN:
        return "guardrail:unknown-tool", _default_reason(facts)
    if task.intents and facts.intent not in task.intents:
        return (
            "guardrail:task-scope",
            f"intent '{facts.intent}' is outside task '{task.id}' "
            f"(its intents: {', '.join(task.intents)})",
        )
    return None


def _judge(
    policy: OutcomePolicy,
    tool: str,
    facts: Facts,
    activation: dict[str, Any],
    subject: Subject,
    deadline: float,
    live: ContextFacts | None,
) -> _Verdict:
    rules, roots = policy.candidates(facts.intent)
    context = subject.cel_context(roots)
    for root in roots - _SUBJECT_ROOTS:
        context.add_variable(root, activation[root])
    if live is not None:  # this call's own context, over the task's
        context.add_variable("context", activation["context"])
        subject.forget("context")
    failures = live.failures if live is not None else {}
    matched: dict[Effect, list[Rule]] = {Effect.DENY: [], Effect.CONFIRM: [], Effect.ALLOW: []}
    errors: list[str] = []
    errored: list[Rule] = []
    unavailable: dict[str, str] = {}
    resource = facts.resource
    clock = time.monotonic
    for rule in rules:
        effect = rule.effect
        if effect is not Effect.DENY and matched[Effect.DENY]:
            break  # a deny already decided; confirm and allow rules cannot change that
        if effect is Effect.ALLOW and (matched[Effect.CONFIRM] or errors):
            break
        if (rule.tools is not None or rule.resources is not None) and not rule.selects(
            tool, resource
        ):
            continue
        if clock() > deadline:
            errors.append("the decision ran past its time budget")
            break
        outcome = _run(rule, context)
        missing = sorted(rule.context_names & failures.keys()) if failures else ()
        if missing and not isinstance(outcome, bool):  # it needed a fact that did not come
            if rule.skip_on_context_error:
                continue
            outcome = "; ".join(f"context '{n}' is unavailable ({failures[n]})" for n in missing)
            if effect is Effect.DENY:
                unavailable[rule.id] = outcome
                outcome = True
        if outcome is True:
            matched[rule.effect].append(rule)
        elif outcome is not False:
            errors.append(outcome)
            errored.append(rule)
    if errors:
        errors = _group_errors(errored, errors)
        return _Verdict(Effect.DENY, tuple(matched[Effect.DENY]), tuple(errors), tuple(errored))
    if unavailable:  # deny rules whose facts did not come apply: fail closed, say why
        notes = tuple(unavailable.values())
        return _Verdict(Effect.DENY, tuple(matched[Effect.DENY]), notes, notes=unavailable)
    for effect in (Effect.DENY, Effect.CONFIRM, Effect.ALLOW):
        if matched[effect]:
            return _Verdict(effect, tuple(matched[effect]), ())
    return _Verdict(policy.default, (), ())


def _group_errors(rules: list[Rule], errors: list[str]) -> list[str]:
    """One line per distinct failure, naming every rule that hit it."""
    by_error: dict[str, list[str]] = {}
    for rule, error in zip(rules, errors, strict=False):
        by_error.setdefault(error, []).append(f"'{rule.id}'")
    for error in errors[len(rules) :]:
        by_error.setdefault(error, [])
    return [
        f"{'rule' if len(ids) == 1 else 'rules'} {', '.join(ids)} could not be evaluated "
        f"for this call: {error}"
        if ids
        else error
        for error, ids in by_error.items()
    ]


def _run(rule: Rule, context: Any) -> bool | str:
    """True/False when the condition holds or not; otherwise why it could not be decided."""
    try:
        result = rule.condition.program.execute(context)
    except KeyError as err:
        return f"it reads {err.args[0]!r}, which this call does not have"
    except TypeError as err:
        if "overload" in str(err):
            return (
                "its condition mixes value types (a string, boolean or null where a number "
                "is expected?); values are never converted"
            )
        return _short(err)
    except Exception as err:
        return _short(err)
    if isinstance(result, bool):
        return result
    return f"its condition gave {type(result).__name__}, not true or false"


def _short(err: BaseException) -> str:
    text = str(err).split(". ")[0].splitlines()[0] if str(err) else type(err).__name__
    return text[:200]


def _build(
    policy: OutcomePolicy,
    call: ToolCall,
    decision_id: str,
    args_digest: str,
    facts: Facts,
    activation: dict[str, Any],
    verdict: _Verdict,
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
        rule_ids, reason = (f"guardrail:default-{policy.default.value}",), _default_reason(facts)
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


def _grant(verdict: _Verdict) -> CredentialGrant | None:
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


def _default_reason(facts: Facts) -> str:
    if facts.intent == UNKNOWN:
        return (
            f"tool '{facts.tool}' has no known intent; declare one with "
            f"@guard.tool(intent=...) or map it under 'tools:' in the policy"
        )
    return f"no rule allows intent '{facts.intent}' for tool '{facts.tool}' (default deny)"


def _instruction(
    verdict: _Verdict,
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
    return _fixed(policy, call, _new_id(), rule_id, reason, errors)


def _fixed(
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
