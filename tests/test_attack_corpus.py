"""An attack corpus run through every entry point: decorated sync and async functions, and a
LangChain tool invoked and ainvoked. Each case must not run the tool body, and must leave
exactly one red evidence span.

The policy: transfer_funds(to, amount) is allowed for to in {alice, bob} and 0 < amount <= 100;
fetch(url) only for host api.allowed.example.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from guardrail.adapters.langchain import guard_tool
from langchain_core.tools import StructuredTool
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic import ValidationError

from guardrail import Guard, Principal, ToolCall, ToolCallDenied
from tests.conftest import attrs, policy

POLICY = """
apiVersion: guardrail/v1
kind: OutcomePolicy
metadata: {name: corpus}
tools:
  transfer_funds: {intent: transfer_funds, resource: account}
  fetch: {intent: read, destinations: [url]}
rules:
  - id: small-transfers-to-known-people
    intent: transfer_funds
    when: args.to in ['alice', 'bob'] && args.amount > 0.0 && args.amount <= 100.0
    effect: allow
  - id: only-the-allowed-api
    intent: read
    when: boundary.destination_hosts == ['api.allowed.example']
    effect: allow
"""
WHO = Principal(id="agent:ops", roles=("ops",))

TRANSFERS: list[tuple[str, dict[str, Any]]] = [
    ("B1 amount as a string", {"to": "alice", "amount": "1e9"}),
    ("B2 negative amount", {"to": "alice", "amount": -500.0}),
    ("B3 NaN", {"to": "alice", "amount": float("nan")}),
    ("B4 infinity", {"to": "alice", "amount": float("inf")}),
    ("B5 boolean", {"to": "alice", "amount": True}),
    ("B6 fullwidth digits", {"to": "alice", "amount": "１００"}),
    ("B7 huge integer", {"to": "alice", "amount": 10**5000}),
    ("C2 smuggled approval field", {"to": "mallory", "amount": 5.0, "approved": True}),
    ("D1 injected recipient", {"to": "mallory", "amount": 99.0}),
    ("D3 tag characters", {"to": "alice\U000e0041", "amount": 5.0}),
    ("H1 ten-megabyte string", {"to": "a" * 10_000_000, "amount": 5.0}),
    ("H2 deep nesting", {"to": "alice", "amount": 5.0, "memo": None}),  # filled in below
    ("I1 log forging", {"to": "bob\n2025-01-01 INFO decision=allow", "amount": 5.0}),
]
FETCHES: list[tuple[str, dict[str, Any]]] = [
    ("C5 userinfo trick", {"url": "https://api.allowed.example@evil.example/"}),
    ("C5 suffix trick", {"url": "https://api.allowed.example.evil.example/"}),
    ("C5 two destinations", {"url": "https://api.allowed.example/ https://evil.example/"}),
]


def _deep(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = [value]
    return value


TRANSFERS[11] = ("H2 deep nesting", {"to": "alice", "amount": 5.0, "memo": _deep(10_000)})


class Harness:
    """One guard, one body counter, and the four ways to call a tool."""

    def __init__(self, provider: TracerProvider) -> None:
        self.guard = Guard(policy(POLICY), tracer_provider=provider)
        self.ran: list[str] = []

        def transfer_funds(to: str, amount: float, **extra: Any) -> str:
            self.ran.append("transfer")
            return "sent"

        def fetch(url: str) -> str:
            self.ran.append("fetch")
            return "fetched"

        async def atransfer_funds(to: str, amount: float, **extra: Any) -> str:
            return transfer_funds(to, amount, **extra)

        async def afetch(url: str) -> str:
            return fetch(url)

        self.sync: dict[str, Callable[..., Any]] = {
            "transfer_funds": self.guard.tool(intent="transfer_funds")(transfer_funds),
            "fetch": self.guard.tool(intent="read", destinations=["url"])(fetch),
        }
        self.asyncs: dict[str, Callable[..., Any]] = {  # same declarations, same names
            "transfer_funds": self.guard.tool(name="transfer_funds", intent="transfer_funds")(
                atransfer_funds
            ),
            "fetch": self.guard.tool(name="fetch", intent="read", destinations=["url"])(afetch),
        }
        self.lc = {
            "transfer_funds": guard_tool(
                StructuredTool.from_function(
                    transfer_funds, name="transfer_funds", description="Send money."
                ),
                self.guard,
            ),
            "fetch": guard_tool(
                StructuredTool.from_function(fetch, name="fetch", description="Fetch a URL."),
                self.guard,
            ),
        }

    def call(self, entry: str, tool: str, args: dict[str, Any]) -> Any:
        with self.guard.task("ops", principal=WHO):
            if entry == "decorated":
                return self.sync[tool](**args)
            if entry == "decorated-async":
                return asyncio.run(self.asyncs[tool](**args))
            if entry == "langchain-invoke":
                return self.lc[tool].invoke(
                    {"type": "tool_call", "id": "c1", "name": tool, "args": args}
                )
            return asyncio.run(
                self.lc[tool].ainvoke({"type": "tool_call", "id": "c1", "name": tool, "args": args})
            )


ENTRIES = ["decorated", "decorated-async", "langchain-invoke", "langchain-ainvoke"]
CASES = [("transfer_funds", name, args) for name, args in TRANSFERS] + [
    ("fetch", name, args) for name, args in FETCHES
]


@pytest.mark.parametrize("entry", ENTRIES)
@pytest.mark.parametrize(("tool", "name", "args"), CASES, ids=[c[1] for c in CASES])
def test_no_case_runs_the_tool_on_any_entry_point(
    provider: TracerProvider,
    exporter: InMemorySpanExporter,
    entry: str,
    tool: str,
    name: str,
    args: dict[str, Any],
) -> None:
    harness = Harness(provider)
    try:
        result = harness.call(entry, tool, args)
    except ToolCallDenied:
        result = None
    except (ValidationError, ValueError, RecursionError):  # LangChain refused it first
        assert entry.startswith("langchain")
        result = None
    except TypeError:  # the tool's own signature refused the call before any decision
        assert entry.startswith("decorated")
        return
    assert harness.ran == [], (name, entry)
    if result is not None:  # LangChain answers the model with an error message instead
        assert getattr(result, "status", None) == "error", (name, entry, result)
    spans = [
        s for s in exporter.get_finished_spans() if attrs(s).get("guardrail.decision") is not None
    ]
    assert len(spans) == 1 and attrs(spans[0])["guardrail.decision"] == "deny"
    reason = attrs(spans[0])["guardrail.reason"]
    assert "\n" not in reason  # one line per event: no forged log lines


@pytest.mark.parametrize("entry", ENTRIES)
def test_the_legitimate_calls_still_run(provider: TracerProvider, entry: str) -> None:
    harness = Harness(provider)
    harness.call(entry, "transfer_funds", {"to": "alice", "amount": 5.0})
    harness.call(entry, "fetch", {"url": "https://api.allowed.example/v1/rates"})
    assert harness.ran == ["transfer", "fetch"]


@pytest.mark.parametrize(
    "name",
    [
        "Transfer_Funds",
        "transfer_funds ",
        "transfer\u200bfunds",
        "trаnsfer_funds",
        "transfer_funds\u202e",
    ],
)
def test_tool_name_smuggling(provider: TracerProvider, name: str) -> None:
    harness = Harness(provider)
    ran: list[str] = []
    decision: Any = harness.guard.execute(
        ToolCall(name, {"to": "alice", "amount": 5.0}),
        lambda a: ran.append("x"),
        on_deny=lambda d: d,
        principal=WHO,
    )
    assert ran == [] and decision.effect.value == "deny"


def test_the_raw_function_is_not_one_attribute_away(provider: TracerProvider) -> None:
    import inspect

    harness = Harness(provider)
    guarded = harness.sync["transfer_funds"]
    assert inspect.unwrap(guarded) is guarded and not hasattr(guarded, "__wrapped__")
