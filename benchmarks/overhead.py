"""What the guard costs per call, against a plain function call in the same run.

Run: python benchmarks/overhead.py [--quick]
Reports median and p99 microseconds per call, and ratios. Not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from guardrail import Guard, Principal, ToolCall, parse_policy

BUYER = Principal(id="agent:buyer", roles=("buyer",))
ARGS = {"item": "chair", "amount": 120.0, "vendor_url": "https://acme.example/shop"}


class Discard(SpanExporter):
    """Receives batches and drops them: measures the SDK, not a network."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        del spans
        return SpanExportResult.SUCCESS


def policy_with(rules: int, *, intents: int) -> Any:
    """``rules`` rules spread over ``intents`` intents; the measured call is intent i0."""
    lines = [
        "apiVersion: guardrail/v1",
        "kind: OutcomePolicy",
        "metadata: {name: bench}",
        f"intents: [{', '.join(f'i{k}' for k in range(intents))}]",
        "tools: {buy_item: {intent: i0, resource: order}}",
        "rules:",
    ]
    lines.append(
        "  - {id: allow-small, intent: i0, effect: allow, "
        "when: \"args.amount <= 500.0 && 'buyer' in principal.roles\"}"
    )
    for n in range(1, rules):
        lines.append(
            f"  - {{id: r{n}, intent: i{n % intents}, effect: deny, "
            f'when: "args.amount > {1000 + n}.0"}}'
        )
    return parse_policy("\n".join(lines) + "\n")


def measure(fn: Callable[[], object], n: int) -> tuple[float, float]:
    for _ in range(min(n, 2000)):
        fn()
    samples = []
    gc.disable()
    try:
        for _ in range(n):
            start = time.perf_counter_ns()
            fn()
            samples.append(time.perf_counter_ns() - start)
    finally:
        gc.enable()
    samples.sort()
    return statistics.median(samples) / 1000, samples[int(len(samples) * 0.99)] / 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer iterations")
    n = 2000 if parser.parse_args().quick else 20000

    def plain(item: str, amount: float, vendor_url: str) -> str:
        return f"{item} {amount} {vendor_url}"

    rows: list[tuple[str, float, float]] = []
    base = measure(lambda: plain(**ARGS), n)
    rows.append(("plain function call", *base))

    bare = Guard(policy_with(1, intents=1))
    guarded = bare.tool(intent="i0")(plain)
    with bare.task("bench", principal=BUYER):
        rows.append(("guarded call, no SDK (API no-op)", *measure(lambda: guarded(**ARGS), n)))

    sdk = TracerProvider()
    sdk.add_span_processor(BatchSpanProcessor(Discard(), max_queue_size=1 << 16))
    tracer = sdk.get_tracer("bench")

    def one_span() -> None:
        with tracer.start_as_current_span("execute_tool buy_item"):
            plain(**ARGS)

    span_only = measure(one_span, n)
    rows.append(("plain call in one SDK span (batch)", *span_only))
    traced = Guard(policy_with(1, intents=1), tracer_provider=sdk)
    traced_tool = traced.tool(intent="i0")(plain)
    with traced.task("bench", principal=BUYER):
        with_sdk = measure(lambda: traced_tool(**ARGS), n)
    rows.append(("guarded call, SDK + batch processor", *with_sdk))
    sdk.shutdown()

    call = ToolCall("buy_item", ARGS)
    for count in (1, 10, 100, 1000):
        guard = Guard(policy_with(count, intents=max(1, count // 10)))
        with guard.task("bench", principal=BUYER):
            timing = measure(lambda g=guard: g.decide(call), n)  # type: ignore[misc]
        rows.append((f"decide in a task, {count} rules (indexed)", *timing))
    explicit = measure(lambda: guard.decide(call, principal=BUYER), n)
    rows.append(("decide, explicit principal, 1000 rules", *explicit))
    worst = Guard(policy_with(1000, intents=1))
    with worst.task("bench", principal=BUYER):
        timing = measure(lambda: worst.decide(call), max(200, n // 20))
    rows.append(("decide, 1000 rules all on one intent", *timing))

    width = max(len(r[0]) for r in rows)
    print(f"{'':{width}}  {'median us':>10}  {'p99 us':>10}  {'x plain':>9}")
    for name, median, p99 in rows:
        print(f"{name:{width}}  {median:10.2f}  {p99:10.2f}  {median / base[0]:9.1f}")
    print(f"\nguarded call with SDK vs a bare SDK span: {with_sdk[0] / span_only[0]:.2f}x")


if __name__ == "__main__":
    main()
