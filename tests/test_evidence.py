"""Evidence: one span per guarded call, GenAI and decision attributes, red denials, redaction."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from guardrail import Guard, OutcomePolicy, Principal, ToolCallDenied
from guardrail.telemetry import OtlpJsonFileExporter
from tests.conftest import PURCHASE_POLICY, attrs, policy

BUYER = Principal(
    id="agent:buyer", roles=("buyer",), delegation=(Principal(id="human:bob", kind="human"),)
)
SHOP = "https://acme.example/shop"
CARD = "4111 1111 1111 1111"


def tool(guard: Guard):
    @guard.tool(intent="purchase", resource="order")
    def buy_item(item: str, amount: float, vendor_url: str, card: str = "") -> str:
        """Buy an item from a shop."""
        return "ok"

    return buy_item


def spans_by_name(exporter: InMemorySpanExporter) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for span in exporter.get_finished_spans():
        out.setdefault(span.name, []).append(span)
    return out


def test_one_span_per_call_with_genai_and_decision_attributes(
    shop_guard: Guard, exporter: InMemorySpanExporter
) -> None:
    buy_item = tool(shop_guard)
    with shop_guard.task("restock", principal=BUYER, ticket="OPS-1"):
        buy_item("chair", 120.0, SHOP)
        with pytest.raises(ToolCallDenied):
            buy_item("gpu", 900.0, "https://evil.example/")
    spans = spans_by_name(exporter)
    task_span = spans["guardrail.task"][0]
    allowed, denied = spans["execute_tool buy_item"]
    a = attrs(allowed)
    assert a["gen_ai.operation.name"] == "execute_tool" and a["gen_ai.tool.name"] == "buy_item"
    assert a["gen_ai.tool.description"] == "Buy an item from a shop."
    assert a["gen_ai.tool.call.id"].startswith("call-")
    assert a["guardrail.decision"] == "allow" and a["guardrail.rule.ids"] == ("small-purchases",)
    assert a["guardrail.policy.name"] == "shop" and a["guardrail.policy.version"] == "7"
    assert a["guardrail.policy.digest"] == shop_guard.policy.digest
    assert a["guardrail.intent"] == "purchase" and a["guardrail.resource"] == "order"
    assert a["guardrail.principal.chain"] == ("agent:buyer", "human:bob")
    assert a["guardrail.task.ticket"] == "OPS-1" and a["guardrail.args.digest"].startswith("sha256")
    assert a["guardrail.outcome"] == "ran" and allowed.status.status_code is StatusCode.UNSET
    d = attrs(denied)
    assert d["guardrail.decision"] == "deny" and d["error.type"] == "guardrail.denied"
    assert denied.status.status_code is StatusCode.ERROR
    assert d["guardrail.sequence"] == a["guardrail.sequence"] + 1
    for span in (allowed, denied):
        assert span.parent is not None and span.parent.span_id == task_span.context.span_id


def test_arguments_appear_only_as_logging_allows(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    logged = policy(
        PURCHASE_POLICY.replace(
            'reason: "{args.item} for {args.amount} is within budget"',
            "reason: ok\n    logging: {level: full, redact: [args.card]}",
        )
    )
    guard = Guard(logged, tracer_provider=provider)
    token = "ghp_" + "Zz9" * 12
    with guard.task("restock", principal=BUYER):
        tool(guard)("chair", 120.0, f"{SHOP}?t={token}", card=CARD)
    span = exporter.get_finished_spans()[0]
    shown = json.loads(attrs(span)["gen_ai.tool.call.arguments"])
    assert shown["item"] == "chair" and shown["card"].startswith("redacted:hmac-sha256:")
    assert shown["vendor_url"].startswith("redacted:")  # the scanner found the token
    dump = json.dumps({k: str(v) for k, v in attrs(span).items()})
    assert token not in dump and CARD not in dump


def test_metadata_level_records_names_not_values(
    shop_guard: Guard, exporter: InMemorySpanExporter
) -> None:
    with shop_guard.task("restock", principal=BUYER):
        tool(shop_guard)("chair", 120.0, SHOP, card=CARD)
    attributes = attrs(exporter.get_finished_spans()[0])
    assert attributes["guardrail.args.names"] == ("amount", "card", "item", "vendor_url")
    assert "gen_ai.tool.call.arguments" not in attributes


def test_a_framework_tool_span_gets_a_child_decision_span(
    shop_guard: Guard, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    framework = provider.get_tracer("some.framework")
    with (
        shop_guard.task("restock", principal=BUYER),
        framework.start_as_current_span("execute_tool buy_item"),
        pytest.raises(ToolCallDenied),
    ):
        tool(shop_guard)("gpu", 1.0, "https://evil.example/")
    spans = spans_by_name(exporter)
    child = spans["guardrail.decision buy_item"][0]
    assert len(spans["execute_tool buy_item"]) == 1  # the framework's, not a second one
    assert attrs(child)["guardrail.decision"] == "deny"
    assert child.status.status_code is StatusCode.UNSET


def test_broken_telemetry_never_breaks_or_flips_a_call(shop_policy: OutcomePolicy) -> None:
    class Exploding(InMemorySpanExporter):
        def export(self, spans):
            raise OSError("collector unreachable")

    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(Exploding()))
    guard = Guard(shop_policy, tracer_provider=tp)
    buy_item = tool(guard)
    with guard.task("restock", principal=BUYER):
        assert buy_item("chair", 1.0, SHOP) == "ok"
        with pytest.raises(ToolCallDenied):
            buy_item("gpu", 1.0, "https://evil.example/")


def test_otlp_json_file_loads_as_otlp(tmp_path: Path, shop_policy: OutcomePolicy) -> None:
    path = tmp_path / "traces.jsonl"
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(OtlpJsonFileExporter(path)))
    guard = Guard(shop_policy, tracer_provider=tp)
    with guard.task("restock", principal=BUYER), pytest.raises(ToolCallDenied):
        tool(guard)("gpu", 1.0, "https://evil.example/")
    tp.shutdown()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    spans = [
        s
        for line in lines
        for rs in line["resourceSpans"]
        for ss in rs["scopeSpans"]
        for s in ss["spans"]
    ]
    tool_span = next(s for s in spans if s["name"] == "execute_tool buy_item")
    assert len(tool_span["traceId"]) == 32 and len(tool_span["spanId"]) == 16
    assert int(tool_span["traceId"], 16) and tool_span["status"]["code"] == 2


class _Receiver(BaseHTTPRequestHandler):
    received: ClassVar[list[ExportTraceServiceRequest]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        self.received.append(request)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[ExportTraceServiceRequest]]]:
    _Receiver.received = []
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/v1/traces", _Receiver.received
    server.shutdown()
    server.server_close()


def test_real_otlp_http_export_to_a_loopback_receiver(
    receiver: tuple[str, list[ExportTraceServiceRequest]], shop_policy: OutcomePolicy
) -> None:
    endpoint, received = receiver
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    guard = Guard(shop_policy, tracer_provider=tp)
    with guard.task("restock", principal=BUYER), pytest.raises(ToolCallDenied):
        tool(guard)("gpu", 1.0, "https://evil.example/")
    tp.shutdown()
    spans = [
        s for r in received for rs in r.resource_spans for ss in rs.scope_spans for s in ss.spans
    ]
    denied = next(s for s in spans if s.name == "execute_tool buy_item")
    attributes = {kv.key: kv.value for kv in denied.attributes}
    assert attributes["guardrail.decision"].string_value == "deny"
    assert attributes["error.type"].string_value == "guardrail.denied"
    assert denied.status.code == 2 and denied.kind == 1
    scope = received[0].resource_spans[0].scope_spans[0].scope
    assert scope.name == "guardrail" and scope.version


@pytest.mark.parametrize(
    ("env", "where"),
    [
        ({}, "traces.jsonl"),
        ({"OTEL_TRACES_EXPORTER": "console"}, "the console"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, "OTLP/HTTP at"),
    ],
)
def test_telemetry_follows_the_standard_variables(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, env: dict[str, str], where: str
) -> None:
    from guardrail.telemetry import configure

    for name in (
        "OTEL_TRACES_EXPORTER",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_SERVICE_NAME",
    ):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("OTEL_SERVICE_NAME", "svc-under-test")
    telemetry = configure(trace_file=None if env else tmp_path / "traces.jsonl")
    try:
        assert where in telemetry.where
        assert telemetry.provider.resource.attributes["service.name"] == "svc-under-test"
    finally:
        telemetry.provider.shutdown()
