"""What the guard adds to LangChain: a guarded tool's invoke, and one agent step with the
middleware, each against the same thing unguarded in the same run.

Run: python benchmarks/langchain_overhead.py [--quick]   (needs the langchain extra)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from langchain.agents import create_agent
from langchain_core.tools import tool
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from guardrail.adapters.langchain import GuardrailMiddleware, guard_tool

from benchmarks.overhead import BUYER, Discard, policy_with
from guardrail import Guard
from tests.lc_support import ScriptedChatModel, purchase

ARGS = {"item": "chair", "amount": 120.0, "vendor_url": "https://acme.example/shop"}


@tool
def buy_item(item: str, amount: float, vendor_url: str) -> str:
    """Buy an item."""
    return f"{item} {amount} {vendor_url}"


def median_us(fn: Callable[[], object], n: int) -> float:
    for _ in range(min(n, 200)):
        fn()
    samples = []
    for _ in range(n):
        start = time.perf_counter_ns()
        fn()
        samples.append(time.perf_counter_ns() - start)
    return statistics.median(samples) / 1000


def agent_run_us(middleware: list[Any], steps: int, n: int) -> float:
    """Median time of one agent run making ``steps`` tool calls (then a final answer)."""

    def run() -> None:
        script = [purchase(f"c{i}", "chair", 120.0) for i in range(steps)]
        agent = create_agent(ScriptedChatModel(script), tools=[buy_item], middleware=middleware)
        agent.invoke({"messages": [("user", "x")]}, context={"principal": BUYER})

    return median_us(run, n)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    n = 100 if parser.parse_args().quick else 1000
    sdk = TracerProvider()
    sdk.add_span_processor(BatchSpanProcessor(Discard(), max_queue_size=1 << 16))
    guard = Guard(policy_with(1, intents=1), tracer_provider=sdk)
    plain = median_us(lambda: buy_item.invoke(ARGS), n * 10)
    guarded_tool = guard_tool(buy_item, guard)
    with guard.task("bench", principal=BUYER):
        guarded = median_us(lambda: guarded_tool.invoke(ARGS), n * 10)
    print(f"tool.invoke unguarded          {plain:9.1f} us")
    print(f"tool.invoke guarded (SDK span) {guarded:9.1f} us   ratio {guarded / plain:.2f}x")

    steps = 5
    bare = agent_run_us([], steps, n // 5)
    with_guard = agent_run_us([GuardrailMiddleware(guard)], steps, n // 5)
    print(f"agent run, {steps} tool steps, no middleware   {bare:9.1f} us")
    print(f"agent run, {steps} tool steps, guardrail       {with_guard:9.1f} us")
    print(f"added per agent step: {(with_guard - bare) / steps:.1f} us")
    sdk.shutdown()


if __name__ == "__main__":
    main()
