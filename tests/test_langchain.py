"""LangChain: guarded tools and the agent middleware, driven by a real agent loop."""

from __future__ import annotations

import asyncio
import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Any

import pytest
from guardrail.adapters.langchain import GuardrailMiddleware, guard_tool, guard_tools
from langchain.agents import create_agent
from langchain_core.messages import ToolMessage
from langchain_core.tools import BaseTool, InjectedToolArg, StructuredTool, tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from guardrail import Guard, OutcomePolicy, Principal, Task, ToolCallDenied
from tests.conftest import ROOT
from tests.lc_support import SHOP, ScriptedChatModel, purchase, tool_call

BUYER = Principal(id="agent:buyer", roles=("buyer",))
GOOD = {"item": "chair", "amount": 120.0, "vendor_url": SHOP}
BAD = {"item": "gpu", "amount": 9000.0, "vendor_url": "https://evil.example/"}


@pytest.fixture
def ran() -> list[Any]:
    return []


@pytest.fixture
def buy_item(ran: list[Any]) -> BaseTool:
    @tool
    def buy_item(item: str, amount: float, vendor_url: str) -> str:
        """Buy an item from a supplier."""
        ran.append((item, amount))
        return f"bought {item}"

    return buy_item


# -- guarded tools ---------------------------------------------------------------------------


def test_a_guarded_tool_looks_like_the_tool(shop_guard: Guard, buy_item: BaseTool) -> None:
    g = guard_tool(buy_item, shop_guard)
    assert (g.name, g.description) == (buy_item.name, buy_item.description)
    assert g.args_schema is buy_item.args_schema
    schema: Any = g.tool_call_schema
    assert schema.model_json_schema() == buy_item.tool_call_schema.model_json_schema()  # type: ignore[union-attr]


def test_the_original_is_not_reachable_through_public_attributes(
    shop_guard: Guard, buy_item: BaseTool
) -> None:
    g = guard_tool(buy_item, shop_guard)
    reachable = []
    for name in dir(g):
        if name.startswith("_"):
            continue
        try:
            reachable.append(getattr(g, name))
        except Exception:
            continue
    assert not any(v is buy_item or v is getattr(buy_item, "func", None) for v in reachable)
    assert not hasattr(g, "func") and not hasattr(g, "coroutine")
    assert not any(v is buy_item for v in g.model_dump().values())


def test_every_entry_point_is_guarded(
    shop_guard: Guard, buy_item: BaseTool, ran: list[Any]
) -> None:
    g = guard_tool(buy_item, shop_guard)
    with shop_guard.task("restock", principal=BUYER):
        assert g.invoke(GOOD) == "bought chair"
        with pytest.raises(ToolCallDenied):
            g.invoke(BAD)
        with pytest.raises(ToolCallDenied):
            asyncio.run(g.ainvoke(BAD))
        with pytest.raises(ToolCallDenied):
            g.run(BAD)
        with pytest.raises(ToolCallDenied):
            asyncio.run(g.arun(BAD))
        batch = g.batch([GOOD, BAD], return_exceptions=True)
        assert batch[0] == "bought chair" and isinstance(batch[1], ToolCallDenied)
        abatch = asyncio.run(g.abatch([BAD, BAD], return_exceptions=True))
        assert all(isinstance(r, ToolCallDenied) for r in abatch)
        with pytest.raises(ToolCallDenied):
            g._run(**BAD, config={})  # even the private entry point decides
        with pytest.raises(ToolCallDenied):
            copy.copy(g).invoke(BAD)
        message = g.invoke({"type": "tool_call", "id": "c9", "name": "buy_item", "args": BAD})
    assert isinstance(message, ToolMessage) and message.status == "error"
    assert message.tool_call_id == "c9" and "Do not retry" in str(message.content)
    assert ran == [("chair", 120.0), ("chair", 120.0)]


def test_on_deny_modes(shop_guard: Guard, buy_item: BaseTool) -> None:
    call = {"type": "tool_call", "id": "c1", "name": "buy_item", "args": BAD}
    with shop_guard.task("restock", principal=BUYER):
        assert "blocked" in guard_tool(buy_item, shop_guard, on_deny="message").invoke(BAD)
        with pytest.raises(ToolCallDenied):
            guard_tool(buy_item, shop_guard, on_deny="raise").invoke(call)


def test_async_only_structured_and_subclassed_tools(shop_guard: Guard, ran: list[Any]) -> None:
    async def buy(item: str, amount: float, vendor_url: str) -> str:
        ran.append(item)
        return "async bought"

    async_only = StructuredTool.from_function(
        coroutine=buy, name="buy_item", description="Buy asynchronously."
    )

    class Refund(BaseTool):
        name: str = "refund"
        description: str = "Refund an order."

        def _run(self, order_id: str, amount: float) -> str:
            ran.append(order_id)
            return "refunded"

    g_async, g_refund = guard_tools([async_only, Refund()], shop_guard)
    with shop_guard.task("restock", principal=BUYER):
        assert asyncio.run(g_async.ainvoke(GOOD)) == "async bought"
        with pytest.raises(ToolCallDenied):
            asyncio.run(g_async.ainvoke(BAD))
        with pytest.raises(ToolCallDenied, match="no known intent"):
            g_refund.invoke({"order_id": "o1", "amount": 5.0})
    assert ran == ["chair"]


def test_injected_arguments_are_not_decided_but_still_passed(shop_guard: Guard) -> None:
    seen: dict[str, Any] = {}

    @tool
    def buy_item(
        item: str, amount: float, vendor_url: str, session: Annotated[object, InjectedToolArg]
    ) -> str:
        """Buy with a session the framework injects."""
        seen["session"] = session
        return "ok"

    session = object()  # not JSON: would be refused if it reached the decision
    with shop_guard.task("restock", principal=BUYER):
        assert guard_tool(buy_item, shop_guard).invoke({**GOOD, "session": session}) == "ok"
    assert seen["session"] is session


def test_content_and_artifact_tools_answer_denials_as_messages(shop_guard: Guard) -> None:
    @tool(response_format="content_and_artifact")
    def buy_item(item: str, amount: float, vendor_url: str) -> tuple[str, dict[str, str]]:
        """Buy and return a receipt."""
        return "bought", {"receipt": "r1"}

    g = guard_tool(buy_item, shop_guard)
    with shop_guard.task("restock", principal=BUYER):
        ok = g.invoke({"type": "tool_call", "id": "a", "name": "buy_item", "args": GOOD})
        no = g.invoke({"type": "tool_call", "id": "b", "name": "buy_item", "args": BAD})
    assert ok.artifact == {"receipt": "r1"} and no.status == "error"


# -- the agent middleware --------------------------------------------------------------------


def agent_for(guard: Guard, script: list[Any], tools: list[BaseTool], **kw: Any) -> Any:
    return create_agent(
        ScriptedChatModel(script),
        tools=tools,
        middleware=[GuardrailMiddleware(guard, **kw)],
        checkpointer=InMemorySaver(),
    )


def tool_messages(result: dict[str, Any]) -> list[ToolMessage]:
    return [m for m in result["messages"] if isinstance(m, ToolMessage)]


CONFIG = {"configurable": {"thread_id": "t1"}}


def test_allow_and_deny_in_an_agent_loop(
    shop_guard: Guard, buy_item: BaseTool, ran: list[Any]
) -> None:
    agent = agent_for(
        shop_guard,
        [purchase("c1", "chair", 120.0), purchase("c2", "gpu", 9000.0, "https://unknown.example")],
        [buy_item],
    )
    result = agent.invoke({"messages": [("user", "restock")]}, CONFIG, context={"principal": BUYER})
    first, second = tool_messages(result)
    assert (first.status, first.content) == ("success", "bought chair")
    assert second.status == "error" and "Do not retry" in second.content
    assert ran == [("chair", 120.0)]
    assert result["messages"][-1].content == "done"  # the agent carried on after the denial


def test_unknown_tool_names_are_denied_not_crashed(shop_guard: Guard, buy_item: BaseTool) -> None:
    agent = agent_for(shop_guard, [tool_call("c1", "buy_іtem", **GOOD)], [buy_item])
    result = agent.invoke({"messages": [("user", "x")]}, CONFIG, context={"principal": BUYER})
    (message,) = tool_messages(result)
    assert message.status == "error" and "no known intent" in message.content


def confirm_run(guard: Guard, buy_item: BaseTool, script: list[Any]) -> tuple[Any, dict[str, Any]]:
    agent = agent_for(guard, script, [buy_item])
    paused = agent.invoke({"messages": [("user", "desk")]}, CONFIG, context={"principal": BUYER})
    (interrupt,) = paused["__interrupt__"]
    return agent, interrupt.value


def resume(agent: Any, answer: Any) -> dict[str, Any]:
    return agent.invoke(Command(resume=answer), CONFIG, context={"principal": BUYER})


def test_confirm_pauses_with_a_bound_payload_and_approval_runs(
    shop_guard: Guard, buy_item: BaseTool, ran: list[Any]
) -> None:
    agent, payload = confirm_run(shop_guard, buy_item, [purchase("c1", "desk", 900.0)])
    assert payload["type"] == "guardrail_approval" and payload["tool"] == "buy_item"
    assert payload["args"]["amount"] == 900.0 and payload["rule_ids"] == ["large-purchases"]
    assert payload["approval_id"].startswith("approval-") and payload["args_digest"]
    assert ran == []
    result = resume(
        agent, {"type": "approve", "approval_id": payload["approval_id"], "approver": "alice"}
    )
    assert tool_messages(result)[-1].content == "bought desk" and ran == [("desk", 900.0)]


@pytest.mark.parametrize(
    "answer",
    [
        {"type": "reject", "message": "not this quarter"},
        {"type": "approve"},  # no approval id
        {"type": "approve", "approval_id": "approval-forged"},
        "yes",
        {"type": "approve", "approval_id": "<id>", "args_digest": "sha256:other"},
    ],
)
def test_anything_but_a_bound_approval_is_refused(
    shop_guard: Guard, buy_item: BaseTool, ran: list[Any], answer: Any
) -> None:
    agent, payload = confirm_run(shop_guard, buy_item, [purchase("c1", "desk", 900.0)])
    if isinstance(answer, dict) and answer.get("approval_id") == "<id>":
        answer = {**answer, "approval_id": payload["approval_id"]}
    result = resume(agent, answer)
    message = tool_messages(result)[-1]
    assert message.status == "error" and ran == []


def test_an_edit_is_decided_again(shop_guard: Guard, buy_item: BaseTool, ran: list[Any]) -> None:
    agent, payload = confirm_run(shop_guard, buy_item, [purchase("c1", "desk", 900.0)])
    result = resume(
        agent,
        {
            "type": "edit",
            "approval_id": payload["approval_id"],
            "args": {**GOOD, "item": "desk", "amount": 450.0},
        },
    )
    assert tool_messages(result)[-1].content == "bought desk" and ran == [("desk", 450.0)]

    agent, payload = confirm_run(shop_guard, buy_item, [purchase("c2", "desk", 900.0)])
    result = resume(
        agent,
        {"type": "edit", "approval_id": payload["approval_id"], "args": {**BAD, "amount": 450.0}},
    )
    assert tool_messages(result)[-1].status == "error" and len(ran) == 1


def test_async_agent_loop(shop_guard: Guard, ran: list[Any]) -> None:
    @tool
    async def buy_item(item: str, amount: float, vendor_url: str) -> str:
        """Buy an item asynchronously."""
        ran.append(item)
        return f"bought {item}"

    agent = agent_for(
        shop_guard, [purchase("c1", "chair", 120.0), purchase("c2", "desk", 900.0)], [buy_item]
    )

    async def main() -> tuple[dict[str, Any], dict[str, Any]]:
        paused = await agent.ainvoke(
            {"messages": [("user", "x")]}, CONFIG, context={"principal": BUYER}
        )
        payload = paused["__interrupt__"][0].value
        done = await agent.ainvoke(
            Command(resume={"type": "approve", "approval_id": payload["approval_id"]}),
            CONFIG,
            context={"principal": BUYER},
        )
        return paused, done

    paused, done = asyncio.run(main())
    assert tool_messages(paused)[0].content == "bought chair"
    assert tool_messages(done)[-1].content == "bought desk" and ran == ["chair", "desk"]


@pytest.mark.parametrize("how", ["context-object", "config", "middleware", "guard-task"])
def test_principal_and_task_sources(
    shop_policy: OutcomePolicy, buy_item: BaseTool, how: str
) -> None:
    guard = Guard(shop_policy)
    task = Task(goal="restock", intents=("purchase",))

    class Context:
        def __init__(self) -> None:
            self.principal, self.task = BUYER, task

    kwargs: dict[str, Any] = {}
    invoke: dict[str, Any] = {}
    if how == "context-object":
        invoke["context"] = Context()
    elif how == "config":
        invoke["config"] = {
            "configurable": {
                "thread_id": "t",
                "guardrail_principal": BUYER.model_dump(),
                "guardrail_task": task,
            }
        }
    elif how == "middleware":
        kwargs = {"principal": BUYER, "task": task}
    agent = agent_for(guard, [purchase("c1", "chair", 120.0)], [buy_item], **kwargs)
    invoke.setdefault("config", CONFIG)
    if how == "guard-task":
        with guard.task("restock", principal=BUYER):
            result = agent.invoke({"messages": [("user", "x")]}, **invoke)
    else:
        result = agent.invoke({"messages": [("user", "x")]}, **invoke)
    assert tool_messages(result)[0].content == "bought chair"


def test_without_a_principal_the_call_is_denied(shop_guard: Guard, buy_item: BaseTool) -> None:
    agent = agent_for(shop_guard, [purchase("c1", "chair", 120.0)], [buy_item])
    result = agent.invoke({"messages": [("user", "x")]}, CONFIG)
    assert tool_messages(result)[0].status == "error"


# -- across a restart, and with LangChain's own OpenTelemetry instrumentation ---------------


def run_script(name: str, *args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "lc_scripts.py"), name, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_an_approval_survives_a_process_restart(tmp_path: Path) -> None:
    db = str(tmp_path / "checkpoints.sqlite")
    first = run_script("pause", db)
    assert first["ran"] == [] and first["approval_id"].startswith("approval-")
    second = run_script("resume", db, first["approval_id"])
    assert second["ran"] == [["desk", 900.0]] and second["last"] == "bought desk"
    forged = run_script("pause", db + "2")
    refused = run_script("resume", db + "2", "approval-" + "0" * 32)
    assert forged["ran"] == refused["ran"] == [] and refused["status"] == "error"


def test_decisions_nest_under_the_instrumentations_tool_span() -> None:
    spans = run_script("instrumented")
    assert spans["guarded_tool"] == [["guardrail.decision buy_item", "execute_tool buy_item"]]
    assert spans["middleware"] == [["guardrail.decision buy_item", "execute_tool buy_item"]]
    assert spans["middleware_tool_spans"] == 1  # the instrumentation's, not a second one
