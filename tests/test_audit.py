"""Audit evidence: durable spool, at-least-once shipping, redaction, tamper evidence, verify."""

from __future__ import annotations

import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

from guardrail import Effect, Guard, Principal, ToolCall
from guardrail._cli import main
from guardrail.audit import records_from_file, records_from_jaeger, records_from_spool, verify
from guardrail.shipping import Shipper, evidence_span
from guardrail.spool import Spool, SpoolError
from guardrail.telemetry import otlp_json
from tests.conftest import ROOT, policy
from tests.otlp_receiver import Receiver

BUYER = Principal(id="agent:buyer", roles=("buyer",))
SHOP = "https://acme.example/shop"
DURABLE = """
apiVersion: guardrail/v1
kind: OutcomePolicy
metadata: {name: durable, version: 2}
tools:
  pay: {intent: purchase}
  note: {intent: read}
rules:
  - id: payments-with-durable-evidence
    intent: purchase
    when: args.amount <= 500.0
    effect: allow
    logging: {level: full, durable: true, redact: [args.card]}
  - id: large-payments
    intent: purchase
    when: args.amount > 500.0
    effect: deny
  - id: notes
    intent: read
    effect: allow
    logging: {level: full}
"""


def pay(guard: Guard, amount: float = 10.0, **extra: Any) -> Any:
    return guard.execute(
        ToolCall("pay", {"amount": amount, **extra}),
        lambda a: "paid",
        on_deny=lambda d: d,
        principal=BUYER,
    )


@pytest.fixture
def spool(tmp_path: Path) -> Spool:
    return Spool(tmp_path / "spool.sqlite", stream="test")


# -- the spool -----------------------------------------------------------------------------


def test_decisions_are_spooled_before_the_action_runs(spool: Spool) -> None:
    guard = Guard(policy(DURABLE), spool=spool)
    seen_pending: list[int] = []

    def run(args: Any) -> str:
        seen_pending.append(spool.count_pending())  # the decision is already committed
        return "paid"

    guard.execute(ToolCall("pay", {"amount": 5.0}), run, principal=BUYER)
    records = list(spool.records())
    assert seen_pending == [1]
    assert [r["kind"] for r in records] == ["decision", "outcome"]
    assert records[0]["effect"] == "allow" and records[1]["outcome"] == "ran"
    assert [r["seq"] for r in records] == [1, 2] and records[1]["prev"] == records[0]["hash"]


def test_durable_calls_are_denied_without_a_working_spool(tmp_path: Path) -> None:
    no_spool = Guard(policy(DURABLE))
    d = pay(no_spool)
    assert d.effect is Effect.DENY and "guardrail:evidence-unavailable" in d.rule_ids
    assert no_spool.execute(ToolCall("note", {}), lambda a: "ok", principal=BUYER) == "ok"

    full = Spool(tmp_path / "full.sqlite", max_pending=1)
    guard = Guard(policy(DURABLE), spool=full)
    assert pay(guard) == "paid"  # one decision record fits...
    refused = pay(guard)  # ...the next does not: the call is denied, not unrecorded
    assert refused.effect is Effect.DENY and "is full" in refused.reason
    assert guard.execute(ToolCall("note", {}), lambda a: "ok", principal=BUYER) == "ok"


def test_a_restarted_writer_continues_its_chain(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    first = Spool(path, stream="w")
    first.append({"kind": "decision", "decision_id": "a", "tool": "t"})
    first.close()
    again = Spool(path, stream="w")
    sealed = again.append({"kind": "decision", "decision_id": "b", "tool": "t"})
    assert sealed["seq"] == 2 and verify(again.records()).ok


def test_an_unwritable_spool_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(SpoolError, match="cannot open"):
        Spool(blocker / "spool.sqlite")


# -- shipping --------------------------------------------------------------------------------


def shipper_for(spool: Spool, receiver: Receiver) -> Shipper:
    exporter = OTLPSpanExporter(endpoint=receiver.endpoint, timeout=1)
    return Shipper(
        spool,
        exporter,
        resource=Resource.create({"service.name": "t"}),
        interval_s=0.05,
        max_backoff_s=0.2,
    )


def received_ids(receiver: Receiver) -> set[str]:
    return {
        receiver.attribute(s, "guardrail.decision.id")
        for s in receiver.spans()
        if receiver.attribute(s, "guardrail.evidence.kind") == "decision"
    }


def test_nothing_is_lost_while_the_collector_is_down(spool: Spool) -> None:
    receiver = Receiver()  # not started: connections are refused
    shipper = shipper_for(spool, receiver).start()
    guard = Guard(policy(DURABLE), spool=spool)
    for i in range(1000):
        assert pay(guard, float(i % 400)) == "paid"
    deadline = time.monotonic() + 10
    while shipper.failures == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert shipper.failures > 0 and shipper.delivered == 0
    receiver.start()
    try:
        assert shipper.stop(timeout_s=60)
        decision_ids = {r["decision_id"] for r in spool.records() if r["kind"] == "decision"}
        assert len(decision_ids) == 1000 and decision_ids <= received_ids(receiver)
    finally:
        receiver.stop()


def test_the_stock_batch_processor_loses_spans_in_the_same_outage() -> None:
    receiver = Receiver()
    provider = TracerProvider()
    exporter = OTLPSpanExporter(endpoint=receiver.endpoint, timeout=1)
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=50))
    guard = Guard(policy(DURABLE), tracer_provider=provider)
    for i in range(1000):
        guard.execute(ToolCall("note", {"i": i}), lambda a: "ok", principal=BUYER)
    time.sleep(2.5)  # the processor tries, the exporter gives up, the batches are dropped
    receiver.start()
    try:
        provider.force_flush()
        provider.shutdown()
        arrived = sum(s.name.startswith("execute_tool") for s in receiver.spans())
    finally:
        receiver.stop()
    lost = 1000 - arrived
    print(f"stock BatchSpanProcessor lost {lost} of 1000 spans in the outage")
    assert lost > 0


def test_spooled_evidence_survives_sigkill(tmp_path: Path) -> None:
    db = tmp_path / "spool.sqlite"
    writer = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "audit_writer.py"), str(db)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    returned = []
    assert writer.stdout is not None
    for line in writer.stdout:
        returned.append(line.strip())
        if len(returned) == 300:
            os.kill(writer.pid, signal.SIGKILL)
            break
    writer.wait(timeout=30)
    writer.stdout.close()
    receiver = Receiver().start()
    try:
        spool = Spool(db, stream="killed")
        assert shipper_for(spool, receiver).flush(timeout_s=60)
        arrived = received_ids(receiver)
    finally:
        receiver.stop()
    assert set(returned) <= arrived  # every decision returned to a caller was delivered
    report = verify(records_from_spool(db))
    assert report.ok, report.findings  # and the sequence shows no gap


def test_audit_spans_do_not_depend_on_the_applications_sampler(spool: Spool) -> None:
    provider = TracerProvider(sampler=ALWAYS_OFF)
    guard = Guard(policy(DURABLE), spool=spool, tracer_provider=provider)
    pay(guard)
    receiver = Receiver().start()
    try:
        assert shipper_for(spool, receiver).flush(timeout_s=30)
        assert len(received_ids(receiver)) == 1
    finally:
        receiver.stop()


# -- redaction ---------------------------------------------------------------------------------


def test_canary_secrets_never_reach_evidence(
    spool: Spool, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    caplog.set_level(logging.DEBUG)
    canaries = [
        "AKIAZ7QW3RT5YU8IO2PA",
        "ghp_" + "Qw3Rt5Yu8Io2Pa4Sd6Fg9Hj1Kl3Zx5Cv7Bn9Mq2Wx",
        "4111 1111 1111 1111",
    ]
    receiver = Receiver().start()
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=receiver.endpoint)))
    guard = Guard(policy(DURABLE), spool=spool, tracer_provider=provider)

    def leaky(args: Any) -> str:
        raise RuntimeError(f"failed with {canaries[0]}")

    try:
        assert guard.execute(
            ToolCall("pay", {"amount": 1.0, "card": canaries[2], "memo": f"key {canaries[0]}"}),
            lambda a: f"result {canaries[1]}",
            principal=BUYER,
        )
        with pytest.raises(RuntimeError):
            guard.execute(ToolCall("note", {"token": canaries[1]}), leaky, principal=BUYER)
        assert shipper_for(spool, receiver).flush(timeout_s=30)
        provider.shutdown()
        exported = b"".join(receiver.raw)
    finally:
        receiver.stop()
    spool_bytes = b"".join(p.read_bytes() for p in tmp_path.glob("spool.sqlite*"))
    logs = caplog.text
    assert exported and spool_bytes
    for canary in canaries:
        for where, blob in (("export", exported), ("spool", spool_bytes)):
            assert canary.encode() not in blob, (canary, where)
        assert canary not in logs


# -- tamper evidence ---------------------------------------------------------------------------


def filled(tmp_path: Path) -> Path:
    spool = Spool(tmp_path / "evidence.sqlite", stream="s")
    guard = Guard(policy(DURABLE), spool=spool)
    for amount in (1.0, 2.0, 900.0, 3.0):
        pay(guard, amount)
    spool.close()
    return tmp_path / "evidence.sqlite"


def tamper(path: Path, sql: str, *params: Any) -> None:
    db = sqlite3.connect(path)
    db.execute(sql, params)
    db.commit()
    db.close()


def kinds(path: Path) -> list[str]:
    return [f.kind for f in verify(records_from_spool(path)).findings]


def test_an_intact_spool_verifies(tmp_path: Path) -> None:
    report = verify(records_from_spool(filled(tmp_path)))
    assert report.ok and report.records == 7 and report.streams == 1


def test_deleted_records_are_found(tmp_path: Path) -> None:
    path = filled(tmp_path)
    tamper(path, "DELETE FROM records WHERE seq = 4")  # an outcome
    assert kinds(path) == ["deleted"]
    other = filled(tmp_path / "again")
    tamper(other, "DELETE FROM records WHERE seq = 3")  # the allow behind a run
    assert sorted(kinds(other)) == ["deleted", "unauthorised-execution"]


def test_altered_records_are_found(tmp_path: Path) -> None:
    path = filled(tmp_path)
    body = json.loads(
        sqlite3.connect(path).execute("SELECT body FROM records WHERE seq = 5").fetchone()[0]
    )
    body["effect"] = "allow"  # someone turns the 900 deny into an allow
    tamper(path, "UPDATE records SET body = ? WHERE seq = 5", json.dumps(body))
    assert kinds(path) == ["altered"]


def test_reordered_records_are_found(tmp_path: Path) -> None:
    path = filled(tmp_path)
    db = sqlite3.connect(path)
    two, three = (
        db.execute("SELECT body FROM records WHERE seq = ?", (n,)).fetchone()[0] for n in (2, 3)
    )
    db.close()
    tamper(path, "UPDATE records SET seq = -2, body = ? WHERE seq = 2", three)
    tamper(path, "UPDATE records SET body = ? WHERE seq = 3", two)
    assert "reordered" in kinds(path)


def test_an_execution_without_an_allow_is_found(tmp_path: Path) -> None:
    path = filled(tmp_path)
    records = records_from_spool(path)
    denied = next(r for r in records if r.get("effect") == "deny")
    forger = Spool(path, stream="s")  # a valid chain, but a run nobody allowed
    forger.append(
        {
            "kind": "outcome",
            "decision_id": denied["decision_id"],
            "time": time.time_ns(),
            "tool": "pay",
            "call_id": "x",
            "trace_id": "",
            "span_id": "",
            "outcome": "ran",
            "error_type": None,
        }
    )
    assert kinds(path) == ["unauthorised-execution"]


def test_verify_reads_trace_files_and_the_cli_exits_1_on_findings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = filled(tmp_path)
    resource = Resource.create({"service.name": "t"})
    spans = [evidence_span(r, resource) for r in records_from_spool(path)]
    trace_file = tmp_path / "traces.jsonl"
    trace_file.write_text(
        json.dumps(otlp_json(spans[:4]))
        + "\n"
        + json.dumps(otlp_json(spans[4:]))
        + "\n"
        + json.dumps(otlp_json(spans[2:3]))
        + "\n"
    )  # one duplicate
    assert len(records_from_file(trace_file)) == 8 and verify(records_from_file(trace_file)).ok
    with pytest.raises(SystemExit) as done:
        main(["audit", "verify", str(trace_file)])
    assert done.value.code == 0 and "intact" in capsys.readouterr().out
    tamper(path, "DELETE FROM records WHERE seq = 1")
    with pytest.raises(SystemExit) as done:
        main(["audit", "verify", str(path)])
    assert done.value.code == 1 and "deleted" in capsys.readouterr().out


@respx.mock
def test_verify_pulls_from_jaeger_v3(tmp_path: Path) -> None:
    path = filled(tmp_path)
    resource = Resource.create({"service.name": "guardrail-demo"})
    document = otlp_json([evidence_span(r, resource) for r in records_from_spool(path)])
    for rs in document["resourceSpans"]:  # as Jaeger v2 answers: int64 values as strings
        for ss in rs["scopeSpans"]:
            for span in ss["spans"]:
                span["startTimeUnixNano"] = str(span["startTimeUnixNano"])
    route = respx.get("http://jaeger.test:16686/api/v3/traces").mock(
        return_value=httpx.Response(200, json={"result": document})
    )
    records = records_from_jaeger("http://jaeger.test:16686", "guardrail-demo")
    assert route.called and route.calls[0].request.url.params["query.service_name"] == (
        "guardrail-demo"
    )
    assert verify(records, source_ordered=False).ok and len(records) == 7
    missing = [r for r in records if r["seq"] != 4]
    assert [f.kind for f in verify(missing, source_ordered=False).findings] == ["deleted"]
    respx.get("http://jaeger.test:16686/api/v3/traces").mock(
        return_value=httpx.Response(404, json={"error": {"httpCode": 404}})
    )
    assert records_from_jaeger("http://jaeger.test:16686", "nobody") == []


def test_unreadable_sources_are_one_clear_paragraph(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    garbage = tmp_path / "notes.jsonl"
    garbage.write_text('{"resourceSpans": []}\nnot json\n')
    with pytest.raises(SystemExit) as done:
        main(["audit", "verify", str(garbage)])
    err = capsys.readouterr().err
    assert done.value.code == 2 and f"{garbage}:2 is neither a spool nor OTLP-JSON" in err
    with respx.mock:
        respx.get("http://jaeger.test/api/v3/traces").mock(side_effect=httpx.ConnectError("no"))
        with pytest.raises(SystemExit) as done:
            main(["audit", "verify", "--jaeger", "http://jaeger.test"])
    err = capsys.readouterr().err
    assert done.value.code == 2 and "cannot query Jaeger" in err and "Traceback" not in err
