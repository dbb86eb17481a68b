"""Scripts the LangChain tests run in their own process (a restart; a global instrumentor)."""

from __future__ import annotations

import json
import sqlite3
import sys
from collections.abc import Callable
from typing import Any

from langchain.agents import create_agent
from langchain_core.messages import ToolMessage
from langchain_core.tools import tool
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.types import Command

sys.path.insert(0, ".")
from guardrail.adapters.langchain import GuardrailMiddleware, guard_tool

from guardrail import Guard, Principal
from tests.conftest import PURCHASE_POLICY, policy
from tests.lc_support import GOOD_ARGS, ScriptedChatModel, purchase

BUYER = Principal(id="agent:buyer", roles=("buyer",))
CONFIG = {"configurable": {"thread_id": "restart"}}
ran: list[Any] = []


@tool
def buy_item(item: str, amount: float, vendor_url: str) -> str:
    """Buy an item."""
    ran.append((item, amount))
    return f"bought {item}"


def agent(db: str, script: list[Any], **guard_options: Any) -> Any:
    saver = SqliteSaver(sqlite3.connect(db, check_same_thread=False))
    guard = Guard(policy(PURCHASE_POLICY), **guard_options)
    return create_agent(
        ScriptedChatModel(script),
        tools=[buy_item],
        middleware=[GuardrailMiddleware(guard)],
        checkpointer=saver,
    )


def pause(db: str) -> dict[str, Any]:
    result = agent(db, [purchase("c1", "desk", 900.0)]).invoke(
        {"messages": [("user", "desk")]}, CONFIG, context={"principal": BUYER}
    )
    return {"ran": ran, "approval_id": result["__interrupt__"][0].value["approval_id"]}


def resume(db: str, approval_id: str) -> dict[str, Any]:
    result = agent(db, []).invoke(
        Command(resume={"type": "approve", "approval_id": approval_id}),
        CONFIG,
        context={"principal": BUYER},
    )
    last = [m for m in result["messages"] if isinstance(m, ToolMessage)][-1]
    return {"ran": ran, "last": last.content, "status": last.status}


def instrumented() -> dict[str, Any]:
    from opentelemetry.instrumentation.langchain import LangchainInstrumentor
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    LangchainInstrumentor().instrument(tracer_provider=provider)
    guard = Guard(policy(PURCHASE_POLICY), tracer_provider=provider)
    with guard.task("restock", principal=BUYER):
        guard_tool(buy_item, guard).invoke(
            {"type": "tool_call", "id": "c1", "name": "buy_item", "args": GOOD_ARGS}
        )
    guarded = _tree(exporter, "guardrail.decision")
    exporter.clear()
    create_agent(
        ScriptedChatModel([purchase("c2", "chair", 120.0)]),
        tools=[buy_item],
        middleware=[GuardrailMiddleware(guard)],
    ).invoke({"messages": [("user", "x")]}, context={"principal": BUYER})
    tool_spans = len(_tree(exporter, "execute_tool"))
    return {
        "guarded_tool": guarded,
        "middleware": _tree(exporter, "guardrail.decision"),
        "middleware_tool_spans": tool_spans,
    }


def _tree(exporter: Any, prefix: str) -> list[list[str | None]]:
    spans = exporter.get_finished_spans()
    names: dict[int, str] = {s.context.span_id: s.name for s in spans}
    return [
        [s.name, names.get(s.parent.span_id) if s.parent else None]
        for s in spans
        if s.name.startswith(prefix)
    ]


if __name__ == "__main__":
    command, *rest = sys.argv[1:]
    commands: dict[str, Callable[..., dict[str, Any]]] = {
        "pause": pause,
        "resume": resume,
        "instrumented": instrumented,
    }
    print(json.dumps(commands[command](*rest)))
