"""The decision function: Facts and a compiled policy in, a Decision out. Total and pure.

Precedence is deny > confirm > allow; with no matching rule the policy's default (deny)
applies. Any error (a refused argument, a condition that cannot be evaluated, a time
budget overrun) is a deny that says what failed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from guardrail._canonical import ArgumentRefused, canonical_args, digest
from guardrail._context import ContextFacts
from guardrail._extract import UNKNOWN, extract
from guardrail._model import (
    Decision,
    Effect,
    Facts,
    Task,
    ToolCall,
)
from guardrail._policy import OutcomePolicy, Rule, ToolSpec
from guardrail._subject import SUBJECT_ROOTS, Subject
from guardrail._verdict import (
    Verdict,
    build,
    default_reason,
    fixed,
    new_id,
    normalize_tool_name,
    refusal,
)

__all__ = [
    "ContextLoader",
    "Subject",
    "evaluate_call",
    "normalize_tool_name",
    "refusal",
]


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
    decision_id = new_id()
    try:
        return _evaluate(
            policy, call, subject, resolve, decision_id, time.monotonic() + budget_s, load_context
        )
    except Exception as err:  # fail closed: whatever broke, the answer is deny
        return fixed(
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
        return fixed(
            policy,
            call,
            decision_id,
            "guardrail:tool-name",
            "the tool name is empty, too long or holds invisible/control characters",
        ), {}
    try:
        args = canonical_args(call.args)
    except ArgumentRefused as err:
        return fixed(
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
        return build(
            policy,
            call,
            decision_id,
            args_digest,
            facts,
            activation,
            Verdict(Effect.DENY, (), ()),
            fixed=(rule_id, reason),
        ), args
    verdict = _judge(policy, tool, facts, activation, subject, deadline, live)
    return build(policy, call, decision_id, args_digest, facts, activation, verdict), args


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
        return "guardrail:unknown-tool", default_reason(facts)
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
) -> Verdict:
    rules, roots = policy.candidates(facts.intent)
    context = subject.cel_context(roots)
    for root in roots - SUBJECT_ROOTS:
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
        return Verdict(Effect.DENY, tuple(matched[Effect.DENY]), tuple(errors), tuple(errored))
    if unavailable:  # deny rules whose facts did not come apply: fail closed, say why
        notes = tuple(unavailable.values())
        return Verdict(Effect.DENY, tuple(matched[Effect.DENY]), notes, notes=unavailable)
    for effect in (Effect.DENY, Effect.CONFIRM, Effect.ALLOW):
        if matched[effect]:
            return Verdict(effect, tuple(matched[effect]), ())
    return Verdict(policy.default, (), ())


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
