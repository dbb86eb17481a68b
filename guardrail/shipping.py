"""Shipping the evidence spool to a collector: at least once, in order, with backoff.

Each spooled record becomes one span, ``guardrail.evidence {kind} {tool}``, in the trace of
the call it describes (a child of its live ``execute_tool`` span). Its span id is derived from
the record's hash, so a record shipped twice is the same span twice; the ``decision id`` and
``seq`` attributes let any reader drop duplicates. Records are marked delivered only after the
exporter reports success. SDK-side code, like `guardrail.telemetry`.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Mapping
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

from guardrail import _semconv as sc
from guardrail._canonical import canonical_json
from guardrail._version import __version__
from guardrail.spool import Spool

_log = logging.getLogger("guardrail.shipping")
_SCOPE = InstrumentationScope(sc.TRACER_NAME, __version__)


def evidence_span(record: Mapping[str, Any], resource: Resource) -> ReadableSpan:
    """The span that carries one evidence record (the whole record, and its chain links)."""
    digest = str(record["hash"])
    trace_id = int(record.get("trace_id") or "0", 16) or int(digest[:32], 16)
    span_id = int(digest[32:48], 16) or 1
    live = int(record.get("span_id") or "0", 16)
    parent = SpanContext(trace_id, live, is_remote=True) if live else None
    context = SpanContext(trace_id, span_id, is_remote=False, trace_flags=TraceFlags(1))
    denied = record.get("kind") == "decision" and record.get("effect") != "allow"
    attributes: dict[str, Any] = {
        sc.EVIDENCE_KIND: record["kind"],
        sc.EVIDENCE_STREAM: record["stream"],
        sc.EVIDENCE_SEQUENCE: record["seq"],
        sc.EVIDENCE_HASH: digest,
        sc.EVIDENCE_PREV: record["prev"],
        sc.EVIDENCE_RECORD: canonical_json(record),
        sc.DECISION_ID: record["decision_id"],
        sc.GEN_AI_TOOL_NAME: record["tool"],
        sc.GEN_AI_TOOL_CALL_ID: record["call_id"],
    }
    if record["kind"] == "decision":
        attributes[sc.DECISION] = record["effect"]
        attributes[sc.RULE_IDS] = tuple(record["rule_ids"])
    else:
        attributes[sc.OUTCOME] = record["outcome"]
    if denied:
        attributes[sc.ERROR_TYPE] = sc.ERROR_DENIED
    return ReadableSpan(
        name=sc.SPAN_EVIDENCE.format(kind=record["kind"], tool=record["tool"]),
        context=context,
        parent=parent,
        resource=resource,
        attributes=attributes,
        kind=SpanKind.INTERNAL,
        status=Status(StatusCode.ERROR, "denied") if denied else Status(StatusCode.UNSET),
        start_time=int(record["time"]),
        end_time=int(record["time"]),
        instrumentation_scope=_SCOPE,
    )


class Shipper:
    """Exports a spool's pending records through any span exporter, until they are accepted.

    Args:
        spool: the spool to drain.
        exporter: e.g. ``OTLPSpanExporter()``; its success is what marks records delivered.
        resource: the resource (service name) the evidence spans carry.
        batch: records per export.
        interval_s: pause between rounds when there is nothing to ship.
        max_backoff_s: the longest pause after failures (backoff doubles, with jitter).
    """

    def __init__(
        self,
        spool: Spool,
        exporter: SpanExporter,
        *,
        resource: Resource | None = None,
        batch: int = 512,
        interval_s: float = 0.5,
        max_backoff_s: float = 30.0,
    ) -> None:
        self._spool = spool
        self._exporter = exporter
        self._resource = resource or Resource.create({})
        self._batch = batch
        self._interval_s = interval_s
        self._max_backoff_s = max_backoff_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.delivered = 0
        self.failures = 0

    def ship_once(self) -> int:
        """Export one batch; return how many records were accepted (0 if none or it failed)."""
        pending = self._spool.pending(self._batch)
        if not pending:
            return 0
        spans = [evidence_span(record, self._resource) for _, record in pending]
        try:
            result = self._exporter.export(spans)
        except Exception as err:  # an exporter that raises is an exporter that failed
            _log.warning("guardrail: evidence export raised %s", type(err).__name__)
            result = SpanExportResult.FAILURE
        if result is not SpanExportResult.SUCCESS:
            self.failures += 1
            return 0
        self._spool.mark_delivered([rowid for rowid, _ in pending])
        self.delivered += len(pending)
        return len(pending)

    def flush(self, timeout_s: float = 30.0) -> bool:
        """Ship until nothing is pending or ``timeout_s`` passed; True if all was delivered."""
        deadline = time.monotonic() + timeout_s
        backoff = 0.05
        while self._spool.count_pending():
            if time.monotonic() >= deadline:
                return False
            if self.ship_once() == 0:
                time.sleep(min(backoff, max(0.0, deadline - time.monotonic())))
                backoff = min(backoff * 2, self._max_backoff_s)
            else:
                backoff = 0.05
        return True

    def start(self) -> Shipper:
        """Ship in a background thread until `stop`."""
        self._thread = threading.Thread(target=self._loop, name="guardrail-shipper", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> bool:
        """Stop the thread after one last attempt to deliver; True if nothing is pending."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        return self.flush(timeout_s)

    def _loop(self) -> None:
        backoff = self._interval_s
        while not self._stop.is_set():
            try:
                shipped = self.ship_once()
            except Exception:  # the spool itself failed: keep trying, loudly
                _log.exception("guardrail: evidence shipping failed")
                shipped = 0
            if shipped:
                backoff = self._interval_s
                continue
            pause = backoff if self._spool.count_pending() else self._interval_s
            self._stop.wait(pause * random.uniform(0.8, 1.2))
            if self._spool.count_pending():
                backoff = min(backoff * 2, self._max_backoff_s)
