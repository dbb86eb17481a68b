"""OpenTelemetry SDK setup for applications, the CLI, the demo and notebooks.

Library code in guardrail uses the API only; this module is the one place that builds an SDK
pipeline. ``configure()`` reads the standard ``OTEL_*`` variables: with an OTLP endpoint set it
exports OTLP (``http/protobuf`` by default, ``grpc`` with the ``otlp`` extra), with
``OTEL_TRACES_EXPORTER=console`` it prints spans, and otherwise it writes OTLP-JSON lines to a
local file that Jaeger's UI can load ("Upload JSON" on the search page).
"""

from __future__ import annotations

import base64
import json
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from google.protobuf.json_format import MessageToDict
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)

from guardrail._errors import GuardrailError

DEFAULT_TRACE_FILE = "guardrail-traces.jsonl"


class OtlpJsonFileExporter(SpanExporter):
    """Appends each batch of spans as one OTLP-JSON line (``{"resourceSpans": [...]}``)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._file: IO[str] | None = None

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Encode with the OTLP encoder, then write as JSON with hex ids (the OTLP/JSON rule)."""
        try:
            line = json.dumps(otlp_json(spans), separators=(",", ":"))
            with self._lock:
                if self._file is None:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                    self._file = self.path.open("a", encoding="utf-8")
                self._file.write(line + "\n")
                self._file.flush()
        except (OSError, ValueError):
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        """Close the file."""
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Writes are flushed as they happen."""
        del timeout_millis
        return True


def otlp_json(spans: Sequence[ReadableSpan]) -> dict[str, Any]:
    """The OTLP/JSON form of ``spans``: camelCase fields, integer enums, hex trace/span ids."""
    message = encode_spans(spans)
    data: dict[str, Any] = MessageToDict(message, use_integers_for_enums=True)
    for resource_spans in data.get("resourceSpans", []):
        for scope_spans in resource_spans.get("scopeSpans", []):
            for span in scope_spans.get("spans", []):
                _hex_ids(span)
                for link in span.get("links", []):
                    _hex_ids(link)
    return data


def _hex_ids(obj: dict[str, Any]) -> None:
    for key in ("traceId", "spanId", "parentSpanId"):
        if obj.get(key):
            obj[key] = base64.b64decode(obj[key]).hex()


@dataclass(frozen=True)
class Telemetry:
    """An SDK pipeline: the tracer provider, the exporter it feeds, and where spans go."""

    provider: TracerProvider
    exporter: SpanExporter
    where: str

    def shutdown(self) -> None:
        """Flush and close the pipeline."""
        self.provider.force_flush()
        self.provider.shutdown()


def configure(
    *,
    service_name: str | None = None,
    trace_file: str | os.PathLike[str] | None = None,
    batch: bool = True,
) -> Telemetry:
    """Build an SDK pipeline from the ``OTEL_*`` variables.

    The provider is returned, not installed globally: pass ``telemetry.provider`` to
    ``Guard(tracer_provider=...)`` or call ``opentelemetry.trace.set_tracer_provider``. The
    exporter can be shared with a `guardrail.shipping.Shipper` for the evidence spool.
    """
    name = service_name or os.environ.get("OTEL_SERVICE_NAME") or "outcome-guardrail"
    provider = TracerProvider(resource=Resource.create({"service.name": name}))
    exporter, where = exporter_from_env(trace_file)
    processor = BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter)
    provider.add_span_processor(processor)
    return Telemetry(provider, exporter, where)


def exporter_from_env(
    trace_file: str | os.PathLike[str] | None = None,
) -> tuple[SpanExporter, str]:
    """The exporter the ``OTEL_*`` variables ask for, and a description of where it sends.

    ``OTEL_TRACES_EXPORTER=console`` prints; an OTLP endpoint exports OTLP (``http/protobuf``
    unless the protocol says ``grpc``); otherwise spans go to an OTLP-JSON lines file
    (``trace_file``, ``GUARDRAIL_TRACE_FILE`` or ``guardrail-traces.jsonl``).
    """
    kind = os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    if kind == "console":
        return ConsoleSpanExporter(), "the console"
    if trace_file is None and endpoint and kind in ("", "otlp"):
        protocol = (
            os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
            or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
            or "http/protobuf"
        )
        if protocol == "grpc":
            try:
                from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
                    OTLPSpanExporter as GrpcExporter,
                )
            except ImportError:
                raise GuardrailError(
                    "OTEL_EXPORTER_OTLP_PROTOCOL=grpc needs the otlp extra: "
                    "pip install 'outcome-guardrail[otlp]' (or use http/protobuf on port 4318)"
                ) from None
            return GrpcExporter(), f"OTLP/gRPC at {endpoint}"
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter(), f"OTLP/HTTP at {endpoint}"
    path = Path(trace_file or os.environ.get("GUARDRAIL_TRACE_FILE") or DEFAULT_TRACE_FILE)
    return OtlpJsonFileExporter(path), str(path)
