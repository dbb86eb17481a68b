"""Checking audit evidence: deleted, altered, reordered and duplicated records, and calls that
ran without an allow decision.

Sources: a spool file, an OTLP-JSON file (lines, or one document such as a Jaeger ``/api/v3``
response), or a running Jaeger's ``/api/v3`` query API.
"""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx

from guardrail import _semconv as sc
from guardrail._errors import GuardrailError
from guardrail._records import record_hash


class AuditSourceError(GuardrailError):
    """Evidence could not be read from a source; the message says which and why."""


@dataclass(frozen=True, slots=True)
class AuditFinding:
    """One problem with the evidence: ``kind`` is deleted, altered, reordered, duplicate,
    unauthorised-execution or unreadable."""

    kind: str
    stream: str
    seq: int | None
    detail: str

    def __str__(self) -> str:
        where = f"{self.stream}#{self.seq}" if self.seq is not None else self.stream
        return f"{self.kind}: {where}: {self.detail}"


@dataclass(frozen=True, slots=True)
class AuditReport:
    """What a verification saw and found."""

    records: int
    streams: int
    findings: tuple[AuditFinding, ...]

    @property
    def ok(self) -> bool:
        """Whether the evidence is complete and intact."""
        return not self.findings


def verify(records: Iterable[Mapping[str, Any]], *, source_ordered: bool = True) -> AuditReport:
    """Check records stream by stream.

    With ``source_ordered`` (a spool, a file the shipper wrote) the order the records come in
    must follow their sequence numbers; a query service returns them in any order, so only
    their timestamps are checked.
    """
    streams: dict[str, list[tuple[int, Mapping[str, Any]]]] = defaultdict(list)
    findings: list[AuditFinding] = []
    count = 0
    for position, record in enumerate(records):
        count += 1
        if not isinstance(record.get("seq"), int) or "hash" not in record:
            findings.append(
                AuditFinding(
                    "unreadable", str(record.get("stream")), None, "a record without seq or hash"
                )
            )
            continue
        streams[str(record.get("stream"))].append((position, record))
    for stream, entries in sorted(streams.items()):
        findings.extend(_check_stream(stream, entries, source_ordered))
    findings.extend(_unauthorised(r for entries in streams.values() for _, r in entries))
    return AuditReport(count, len(streams), tuple(findings))


def _check_stream(
    stream: str, entries: list[tuple[int, Mapping[str, Any]]], source_ordered: bool
) -> Iterator[AuditFinding]:
    by_seq: dict[int, tuple[int, Mapping[str, Any]]] = {}
    for position, record in entries:
        seq = int(record["seq"])
        if record_hash(record) != record["hash"]:
            # still holds its place in the chain: the finding is the alteration, not a gap
            yield AuditFinding("altered", stream, seq, "its content does not match its hash")
        if seq in by_seq:
            if by_seq[seq][1]["hash"] == record["hash"]:
                continue  # the same record delivered twice: at-least-once shipping
            yield AuditFinding("altered", stream, seq, "two different records claim this seq")
            continue
        by_seq[seq] = (position, record)
    ordered = sorted(by_seq.items())
    previous: Mapping[str, Any] | None = None
    last_position = -1
    for seq, (position, record) in ordered:
        expected = 1 if previous is None else int(previous["seq"]) + 1
        if seq != expected:
            yield AuditFinding(
                "deleted", stream, expected, f"records {expected}..{seq - 1} are missing"
            )
        elif previous is not None and record["prev"] != previous["hash"]:
            yield AuditFinding("altered", stream, seq, "its prev does not match the record before")
        if previous is not None and int(record.get("time", 0)) < int(previous.get("time", 0)):
            yield AuditFinding("reordered", stream, seq, "it is dated before the record before")
        elif source_ordered and position < last_position:
            yield AuditFinding("reordered", stream, seq, "it is stored before the record before")
        last_position = max(last_position, position)
        previous = record


def _unauthorised(records: Iterable[Mapping[str, Any]]) -> Iterator[AuditFinding]:
    decisions = {}
    ran = []
    for r in records:
        if r.get("kind") == "decision":
            decisions[r.get("decision_id")] = r
        elif r.get("kind") == "outcome" and r.get("outcome") in ("ran", "failed"):
            ran.append(r)
    for r in ran:
        decision = decisions.get(r.get("decision_id"))
        if decision is None or decision.get("effect") != "allow":
            why = "no decision record" if decision is None else f"decision {decision['effect']}"
            yield AuditFinding(
                "unauthorised-execution",
                str(r.get("stream")),
                r.get("seq"),
                f"{r.get('tool')} ran with {why} ({r.get('decision_id')})",
            )


# -- sources ------------------------------------------------------------------------------


def records_from_spool(path: str | Path) -> list[dict[str, Any]]:
    """Every record in a spool file, in the order written (opened read-only)."""
    db = sqlite3.connect(f"file:{Path(path)}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT body FROM records ORDER BY rowid").fetchall()
    finally:
        db.close()
    return [json.loads(body) for (body,) in rows]


def records_from_otlp(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Evidence records carried by the spans of an OTLP-JSON document (or a v3 response)."""
    if "result" in document and isinstance(document["result"], Mapping):
        document = document["result"]
    out = []
    for resource_spans in document.get("resourceSpans", []):
        for scope_spans in resource_spans.get("scopeSpans", []):
            for span in scope_spans.get("spans", []):
                for attribute in span.get("attributes", []):
                    if attribute.get("key") == sc.EVIDENCE_RECORD:
                        out.append(json.loads(attribute["value"]["stringValue"]))
    return out


def records_from_file(path: str | Path) -> list[dict[str, Any]]:
    """Records from a spool file or an OTLP-JSON file (JSON lines or one document)."""
    path = Path(path)
    try:
        with path.open("rb") as head:
            if head.read(16).startswith(b"SQLite format 3"):
                return records_from_spool(path)
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError, sqlite3.Error) as err:
        raise AuditSourceError(f"cannot read {path}: {err}") from None
    try:
        documents = [json.loads(text)]
    except json.JSONDecodeError:
        documents = []
        for number, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    documents.append(json.loads(line))
                except json.JSONDecodeError as err:
                    raise AuditSourceError(
                        f"{path}:{number} is neither a spool nor OTLP-JSON ({err.msg}); give a "
                        f"spool file, a trace file the demo or shipper wrote, or a Jaeger export"
                    ) from None
    try:
        return [r for d in documents if isinstance(d, dict) for r in records_from_otlp(d)]
    except (KeyError, TypeError, ValueError) as err:
        raise AuditSourceError(f"{path} holds evidence spans that cannot be read ({err})") from None


def records_from_jaeger(
    base_url: str,
    service: str,
    *,
    lookback: timedelta = timedelta(hours=1),
    client: httpx.Client | None = None,
) -> list[dict[str, Any]]:
    """Records from a Jaeger v2 query service's ``/api/v3/traces`` search."""
    end = datetime.now(timezone.utc)
    params = {
        "query.service_name": service,
        "query.start_time_min": (end - lookback).isoformat().replace("+00:00", "Z"),
        "query.start_time_max": end.isoformat().replace("+00:00", "Z"),
        "query.num_traces": "1000",
    }
    own = client is None
    http = client or httpx.Client(timeout=30)
    url = f"{base_url.rstrip('/')}/api/v3/traces"
    try:
        response = http.get(url, params=params)
        if response.status_code == 404:
            return []
        response.raise_for_status()
        return records_from_otlp(response.json())
    except httpx.HTTPError as err:
        raise AuditSourceError(
            f"cannot query Jaeger at {url} ({type(err).__name__}: {err}); check the URL and "
            f"that the query service (port 16686) is up"
        ) from None
    except ValueError as err:
        raise AuditSourceError(
            f"Jaeger at {url} answered something that is not OTLP-JSON ({err})"
        ) from None
    finally:
        if own:
            http.close()
