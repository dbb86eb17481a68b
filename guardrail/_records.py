"""Evidence records: what the spool keeps and ships, chained by hashes per stream.

A record is a JSON object. Its ``hash`` is the SHA-256 of its canonical JSON without the
``hash`` field; that JSON includes ``seq`` and ``prev`` (the previous record's hash in the
same stream), so deleting, altering or reordering records breaks the chain.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from typing import Any

from guardrail._canonical import canonical_json
from guardrail._model import Decision

RECORD_VERSION = 1


def decision_record(
    decision: Decision,
    principal: Any,
    task: Any,
    shown_args: Any | None,
    trace_id: str,
    span_id: str,
) -> dict[str, Any]:
    """The evidence of one decision, before the action runs (no secrets, no raw arguments)."""
    facts = decision.facts
    record: dict[str, Any] = {
        "kind": "decision",
        "decision_id": decision.decision_id,
        "time": time.time_ns(),
        "tool": decision.tool,
        "call_id": decision.call_id,
        "trace_id": trace_id,
        "span_id": span_id,
        "effect": decision.effect.value,
        "rule_ids": list(decision.rule_ids),
        "reason": decision.reason,
        "policy": {
            "name": decision.policy_name,
            "version": decision.policy_version,
            "digest": decision.policy_digest,
        },
        "args_digest": decision.args_digest,
        "principal": {
            "id": principal.id,
            "kind": principal.kind,
            "chain": [principal.id, *(p.id for p in principal.delegation)],
        },
        "task": {"id": task.id, "goal": task.goal},
        "controls": list(decision.controls),
        "errors": list(decision.errors),
        "approval_id": decision.approval_id,
        "approver": decision.approver,
        "credential_id": decision.credential_id,
    }
    if facts is not None:
        record["intent"] = facts.intent
        record["resource"] = facts.resource
        record["boundary"] = facts.boundary.to_facts()
        record["logging"] = {"level": facts.logging.level, "durable": facts.logging.durable}
        if facts.context:
            record["context"] = dict(facts.context)
    if shown_args is not None:
        record["args"] = shown_args
    return record


def outcome_record(
    decision: Decision, outcome: str, error_type: str | None, trace_id: str, span_id: str
) -> dict[str, Any]:
    """What happened to an allowed call: it ran, or it failed (exception type only)."""
    return {
        "kind": "outcome",
        "decision_id": decision.decision_id,
        "time": time.time_ns(),
        "tool": decision.tool,
        "call_id": decision.call_id,
        "trace_id": trace_id,
        "span_id": span_id,
        "outcome": outcome,
        "error_type": error_type,
    }


def seal(record: Mapping[str, Any], stream: str, seq: int, prev: str) -> dict[str, Any]:
    """``record`` placed in a stream's chain: with version, stream, seq, prev and its hash."""
    sealed = {**record, "v": RECORD_VERSION, "stream": stream, "seq": seq, "prev": prev}
    sealed.pop("hash", None)
    sealed["hash"] = record_hash(sealed)
    return sealed


def record_hash(record: Mapping[str, Any]) -> str:
    """SHA-256 over the canonical JSON of the record without its ``hash`` field."""
    body = {k: v for k, v in record.items() if k != "hash"}
    return hashlib.sha256(canonical_json(body).encode()).hexdigest()
