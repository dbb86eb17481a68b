"""Audit evidence as OpenTelemetry spans, through the API only.

One ``execute_tool {tool}`` span per guarded call (or a ``guardrail.decision`` child when a
framework already opened the tool span). A call that was denied or not confirmed is marked
ERROR with ``error.type=guardrail.denied`` so reviewers see it red in Jaeger. Argument values
appear only at logging level ``full``, after redaction; exception messages never appear.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, TracerProvider

from guardrail import _semconv as sc
from guardrail._canonical import redact_paths
from guardrail._model import Decision, Effect, Facts
from guardrail._version import __version__


class Recorder:
    """Writes decision evidence onto spans of the given (or global) tracer provider."""

    def __init__(self, tracer_provider: TracerProvider | None = None) -> None:
        self._tracer = trace.get_tracer(sc.TRACER_NAME, __version__, tracer_provider)
        self._hash_key = secrets.token_bytes(32)

    @contextmanager
    def call_span(self, tool: str, call_id: str, description: str | None) -> Iterator[Span]:
        """Open the span for one guarded call: ``execute_tool {tool}``, or a decision span
        under the tool span a framework's instrumentation already opened."""
        current = trace.get_current_span()
        nested = getattr(current, "name", None) == sc.SPAN_TOOL.format(tool=tool)
        name = (sc.SPAN_DECISION if nested else sc.SPAN_TOOL).format(tool=tool)
        attributes: dict[str, Any] = {
            sc.GEN_AI_OPERATION_NAME: sc.EXECUTE_TOOL,
            sc.GEN_AI_TOOL_NAME: tool,
            sc.GEN_AI_TOOL_CALL_ID: call_id,
            sc.GEN_AI_TOOL_TYPE: "function",
        }
        if description:
            attributes[sc.GEN_AI_TOOL_DESCRIPTION] = description[:512]
        with self._tracer.start_as_current_span(
            name,
            kind=SpanKind.INTERNAL,
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            span.set_attribute(sc.NESTED, nested)
            yield span

    @contextmanager
    def task_span(self, attributes: Mapping[str, Any]) -> Iterator[Span]:
        """The parent span of every call made inside a task."""
        with self._tracer.start_as_current_span(
            sc.SPAN_TASK, kind=SpanKind.INTERNAL, attributes=dict(attributes)
        ) as span:
            yield span

    def decision(
        self,
        span: Span,
        decision: Decision,
        sequence: int,
        subject_attributes: Mapping[str, Any],
        args: Mapping[str, Any] | None,
    ) -> None:
        """Record what was decided, by which rules and policy, for whom (one write)."""
        if not span.is_recording():
            return
        attributes: dict[str, Any] = {
            sc.DECISION: decision.effect.value,
            sc.DECISION_ID: decision.decision_id,
            sc.SEQUENCE: sequence,
            sc.RULE_IDS: decision.rule_ids,
            sc.REASON: decision.reason[:1024],
            sc.POLICY_NAME: decision.policy_name,
            sc.POLICY_VERSION: decision.policy_version,
            sc.POLICY_DIGEST: decision.policy_digest,
            sc.ARGS_DIGEST: decision.args_digest,
            **subject_attributes,
        }
        if decision.controls:
            attributes[sc.CONTROLS] = decision.controls
        if decision.credential_id:
            attributes[sc.CREDENTIAL_ID] = decision.credential_id
        if decision.errors:
            attributes[sc.ERRORS] = tuple(e[:256] for e in decision.errors)
        if decision.facts is not None:
            self._facts(attributes, decision.facts, args)
        span.set_attributes(attributes)

    def _facts(
        self, attributes: dict[str, Any], facts: Facts, args: Mapping[str, Any] | None
    ) -> None:
        b = facts.boundary
        attributes[sc.INTENT] = facts.intent
        attributes[sc.INTENT_SOURCE] = facts.intent_source
        attributes[sc.LOGGING_LEVEL] = facts.logging.level
        optional = {
            sc.RESOURCE: facts.resource,
            sc.BOUNDARY_DATA_CLASSES: b.data_classes,
            sc.BOUNDARY_DESTINATIONS: b.destination_hosts,
            sc.BOUNDARY_EXTERNAL_HOSTS: b.external_hosts,
            sc.BOUNDARY_ENVIRONMENT: b.environment,
            sc.BOUNDARY_TENANT: b.tenant,
            sc.LOGGING_REDACTED: facts.logging.redact,
            sc.CONTEXT: json.dumps(dict(facts.context), sort_keys=True) if facts.context else None,
        }
        attributes.update((k, v) for k, v in optional.items() if v)
        if args is None or facts.logging.level == "none":
            return
        attributes[sc.ARGS_NAMES] = tuple(sorted(args))
        if facts.logging.level == "full":
            shown = self.redact(args, facts.logging.redact)
            attributes[sc.GEN_AI_TOOL_CALL_ARGUMENTS] = json.dumps(
                shown, sort_keys=True, ensure_ascii=False
            )[:8192]

    def redact(self, args: Mapping[str, Any], paths: tuple[str, ...]) -> Any:
        """A copy of ``args`` with every listed path replaced by a keyed hash of its value."""
        return redact_paths(args, frozenset(paths), self._keyed_hash)

    def _keyed_hash(self, value: Any) -> str:
        raw = json.dumps(value, sort_keys=True, ensure_ascii=False).encode()
        return (
            "redacted:hmac-sha256:" + hmac.new(self._hash_key, raw, hashlib.sha256).hexdigest()[:16]
        )

    @staticmethod
    def event(span: Span, name: str, attributes: Mapping[str, Any]) -> None:
        """A point in the call's life, such as a confirmation being answered."""
        span.add_event(name, dict(attributes))

    @staticmethod
    def finish(
        span: Span, decision: Decision, *, nested: bool, failure: BaseException | None = None
    ) -> None:
        """Set the span's status: red for a denial (on the tool span) or a failing tool."""
        if decision.effect is not Effect.ALLOW:
            span.set_attribute(sc.OUTCOME, "not-run")
            if not nested:
                span.set_attribute(sc.ERROR_TYPE, sc.ERROR_DENIED)
                span.set_status(Status(StatusCode.ERROR, f"denied: {decision.rule_ids[0]}"))
        elif failure is not None:
            span.set_attribute(sc.OUTCOME, "failed")
            span.set_attribute(sc.ERROR_TYPE, type(failure).__qualname__)
            span.set_status(Status(StatusCode.ERROR, type(failure).__qualname__))
        else:
            span.set_attribute(sc.OUTCOME, "ran")


def subject_attributes(principal: Any, task: Any) -> dict[str, Any]:
    """Span attributes naming who acted and for which task (computed once per task)."""
    attributes: dict[str, Any] = {
        sc.PRINCIPAL_ID: principal.id,
        sc.PRINCIPAL_KIND: principal.kind,
        sc.PRINCIPAL_CHAIN: (principal.id, *(p.id for p in principal.delegation)),
        sc.TASK_ID: task.id,
    }
    if principal.roles:
        attributes[sc.PRINCIPAL_ROLES] = tuple(principal.roles)
    if task.intents:
        attributes[sc.TASK_INTENTS] = tuple(task.intents)
    if task.goal:
        attributes[sc.TASK_GOAL] = task.goal[:256]
    if task.environment:
        attributes[sc.TASK_ENVIRONMENT] = task.environment
    if task.ticket:
        attributes[sc.TASK_TICKET] = task.ticket
    return attributes
