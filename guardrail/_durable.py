"""Durable evidence: each decision goes to the spool before the action runs.

A call whose logging requirement is ``durable`` runs only if its record was committed; when
there is no spool, or the spool is full or broken, such a call is denied (never a silent drop).
Other calls are spooled when a spool is configured, and run even if that fails (logged).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from opentelemetry.trace import Span, format_span_id, format_trace_id

from guardrail import _semconv as sc
from guardrail._asking import denied
from guardrail._evidence import Recorder
from guardrail._model import Decision, Effect
from guardrail._records import decision_record, outcome_record
from guardrail._task import Scope

_log = logging.getLogger("guardrail")


@runtime_checkable
class EvidenceSink(Protocol):
    """Where durable evidence goes: `guardrail.spool.Spool`, or anything that commits a
    record durably before returning it sealed (and raises if it cannot)."""

    def append(self, record: Mapping[str, Any]) -> Mapping[str, Any]:
        """Commit ``record``; return it as stored (with ``seq`` and ``hash``)."""


class Evidence:
    """The guard's writer of durable records."""

    def __init__(self, recorder: Recorder, sink: EvidenceSink | None) -> None:
        self._recorder = recorder
        self._sink = sink

    def persist(
        self, span: Span, decision: Decision, scope: Scope, args: Mapping[str, Any]
    ) -> Decision:
        """Spool the decision; deny a durable call whose record could not be committed."""
        durable = decision.facts is not None and decision.facts.logging.durable
        if self._sink is None:
            if durable and decision.effect is not Effect.DENY:
                return denied(
                    decision,
                    "guardrail:evidence-unavailable",
                    "this call requires durable evidence and the guard has no spool; "
                    "configure Guard(spool=Spool(...))",
                )
            return decision
        ids = span.get_span_context()
        subject = scope.subject
        try:
            sealed = self._sink.append(
                decision_record(
                    decision,
                    subject.principal,
                    subject.task,
                    self._shown(decision, args),
                    format_trace_id(ids.trace_id),
                    format_span_id(ids.span_id),
                )
            )
        except Exception as err:
            if durable and decision.effect is not Effect.DENY:
                return denied(
                    decision,
                    "guardrail:evidence-unavailable",
                    f"this call requires durable evidence and the spool refused it ({err})",
                )
            _log.warning("guardrail: evidence for %s not spooled: %s", decision.decision_id, err)
            return decision
        span.set_attribute(sc.EVIDENCE_SEQUENCE, int(sealed.get("seq", 0)))
        return decision

    def outcome(self, span: Span, decision: Decision, failure: BaseException | None) -> None:
        """Spool what became of an allowed call (best effort: the action already ran)."""
        if self._sink is None:
            return
        ids = span.get_span_context()
        record = outcome_record(
            decision,
            "failed" if failure is not None else "ran",
            type(failure).__qualname__ if failure is not None else None,
            format_trace_id(ids.trace_id),
            format_span_id(ids.span_id),
        )
        try:
            self._sink.append(record)
        except Exception as err:
            _log.warning("guardrail: outcome of %s not spooled: %s", decision.decision_id, err)

    def _shown(self, decision: Decision, args: Mapping[str, Any]) -> Any | None:
        facts = decision.facts
        if facts is None or facts.logging.level != "full":
            return None
        return self._recorder.redact(args, facts.logging.redact)
