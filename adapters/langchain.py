"""LangChain adapters: guarded tools and a middleware for LangChain v1 agents.

Both feed the guard's one pipeline; nothing here decides anything.

```python
from guardrail.adapters.langchain import GuardrailMiddleware, guard_tools

tools = guard_tools([search_orders, refund_order], guard)          # any BaseTool
agent = create_agent(model, tools=[search_orders, refund_order],
                     middleware=[GuardrailMiddleware(guard)], checkpointer=InMemorySaver())
```

Who acts and for which task: pass ``context={"principal": Principal(...), "task": Task(...)}``
to ``agent.invoke`` (any object or mapping with those two fields works, dicts are validated),
or ``config={"configurable": {"guardrail_principal": ..., "guardrail_task": ...}}``, or give
them to the middleware, or enter ``guard.task(...)`` around the call. The first found wins, in
that order.

Needs the ``langchain`` extra: ``pip install "outcome-guardrail[langchain]"``.
"""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Literal

from langchain.agents.middleware import AgentMiddleware
from langchain_core.messages import ToolMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool
from langgraph.errors import GraphBubbleUp
from langgraph.types import Command, interrupt
from pydantic import PrivateAttr

from guardrail import (
    Approval,
    ConfirmationRequest,
    Decision,
    Guard,
    Principal,
    Task,
    ToolCall,
    ToolCallDenied,
    ToolSpec,
)

OnDeny = Literal["auto", "message", "raise"]
APPROVAL_TYPE = "guardrail_approval"

__all__ = [
    "APPROVAL_TYPE",
    "GuardedTool",
    "GuardrailMiddleware",
    "InterruptConfirmer",
    "guard_tool",
    "guard_tools",
]


# -- confirmation through a LangGraph interrupt -------------------------------------------


class InterruptConfirmer:
    """Asks a human by pausing the graph with ``interrupt()``.

    The interrupt's value carries the tool, the (redacted) arguments, the reasons, the approval
    id and the argument digest. Resume with ``Command(resume=...)`` and one of::

        {"type": "approve", "approval_id": "<from the interrupt>"}
        {"type": "reject", "message": "why"}
        {"type": "edit", "approval_id": "<from the interrupt>", "args": {...}}

    An approval must name the approval id it answers: that id is bound to the exact call
    (tool, arguments, principal, task, policy), so an answer meant for another or an altered
    call is refused. Edited arguments are decided again from scratch. Needs a checkpointer.
    """

    inline = True
    passthrough = (GraphBubbleUp,)

    def confirm(self, request: ConfirmationRequest) -> Approval:
        """Pause the graph; on resume, read the human's answer."""
        d = request.decision
        answer = interrupt(
            {
                "type": APPROVAL_TYPE,
                "tool": d.tool,
                "call_id": d.call_id,
                "args": request.shown_args(),
                "reason": d.reason,
                "rule_ids": list(d.rule_ids),
                "approval_id": request.approval_id,
                "args_digest": d.args_digest,
                "policy_digest": d.policy_digest,
                "answers": ["approve", "reject", "edit"],
            }
        )
        return read_answer(answer, request)


def read_answer(answer: object, request: ConfirmationRequest) -> Approval:
    """Turn a resume value into an `Approval`, strictly: anything unclear is a rejection."""
    if not isinstance(answer, Mapping):
        return Approval(request.approval_id, request.binding, False, "resume", "unreadable answer")
    kind = answer.get("type")
    approver = str(answer.get("approver") or "resume")[:128]
    if kind == "reject" or kind not in ("approve", "edit"):
        note = str(answer.get("message") or f"answer type {kind!r}")[:500]
        return Approval(request.approval_id, request.binding, False, approver, note)
    approval_id = str(answer.get("approval_id") or "")
    digest = answer.get("args_digest")
    binding = request.binding
    if digest is not None and digest != request.decision.args_digest:
        binding = "mismatch"  # the answer was about other arguments
    if kind == "edit":
        edited = answer.get("args")
        if not isinstance(edited, Mapping):
            return Approval(approval_id, binding, False, approver, "an edit needs 'args'")
        return Approval(approval_id, binding, True, approver, edited_args=dict(edited))
    return Approval(approval_id, binding, True, approver)


# -- guarded tools -------------------------------------------------------------------------


class _Pending:
    """The call in flight: the model's raw input, its call id, and whether the guard got it."""

    __slots__ = ("call_id", "raw", "reached")

    def __init__(self, raw: object, call_id: str | None) -> None:
        self.raw, self.call_id, self.reached = raw, call_id, False


_CALL: ContextVar[_Pending | None] = ContextVar("guardrail_lc_call", default=None)


class _Run:
    """Who acts, for which task and who confirms, for the calls of one agent step."""

    __slots__ = ("confirmer", "principal", "task")

    def __init__(
        self, principal: Principal | None, task: Task | None, confirmer: InterruptConfirmer | None
    ) -> None:
        self.principal, self.task, self.confirmer = principal, task, confirmer


_RUN: ContextVar[_Run | None] = ContextVar("guardrail_lc_run", default=None)


class GuardedTool(BaseTool):
    """A `BaseTool` with the same name, description and schema as the tool it guards.

    Every path (``invoke``, ``ainvoke``, ``batch``, ``abatch``, ``run``, ``arun``, tool-call
    dicts) goes through the guard. The guarded tool is held privately; no public attribute
    hands it back.
    """

    _guard: Guard = PrivateAttr()
    _inner: _Inner = PrivateAttr()
    _on_deny: OnDeny = PrivateAttr(default="auto")

    def run(
        self, tool_input: Any, *args: Any, tool_call_id: str | None = None, **kwargs: Any
    ) -> Any:
        """Run through the guard (LangChain's ``invoke`` and ``batch`` come here)."""
        pending = _Pending(tool_input, tool_call_id)
        token = _CALL.set(pending)
        try:
            return super().run(tool_input, *args, tool_call_id=tool_call_id, **kwargs)
        except BaseException as err:
            if not pending.reached:  # LangChain refused the input before the guard saw it
                self._refused(err)
            raise
        finally:
            _CALL.reset(token)

    async def arun(
        self, tool_input: Any, *args: Any, tool_call_id: str | None = None, **kwargs: Any
    ) -> Any:
        """Async twin of `run` (``ainvoke`` and ``abatch`` come here)."""
        pending = _Pending(tool_input, tool_call_id)
        token = _CALL.set(pending)
        try:
            return await super().arun(tool_input, *args, tool_call_id=tool_call_id, **kwargs)
        except BaseException as err:
            if not pending.reached:  # LangChain refused the input before the guard saw it
                self._refused(err)
            raise
        finally:
            _CALL.reset(token)

    def _run(
        self, *args: Any, config: RunnableConfig, run_manager: Any = None, **kwargs: Any
    ) -> Any:
        call, call_id = self._call(kwargs)
        inner = self._inner

        def run(final: Mapping[str, object]) -> Any:
            merged = _merged(kwargs, call.args, final)
            return inner.tool._run(*args, **inner.sync_extras(merged, config, run_manager))

        step = _RUN.get() or _Run(None, None, None)
        return self._guard.execute(
            call,
            run,
            description=self.description,
            on_deny=self._denial(call_id),
            principal=step.principal,
            task=step.task,
            confirmer=step.confirmer,
        )

    async def _arun(
        self, *args: Any, config: RunnableConfig, run_manager: Any = None, **kwargs: Any
    ) -> Any:
        call, call_id = self._call(kwargs)
        inner = self._inner

        async def run(final: Mapping[str, object]) -> Any:
            merged = _merged(kwargs, call.args, final)
            return await inner.tool._arun(*args, **inner.async_extras(merged, config, run_manager))

        step = _RUN.get() or _Run(None, None, None)
        return await self._guard.aexecute(
            call,
            run,
            description=self.description,
            on_deny=self._denial(call_id),
            principal=step.principal,
            task=step.task,
            confirmer=step.confirmer,
        )

    def _refused(self, err: BaseException) -> None:
        """LangChain rejected the input before the guard could decide: record the attempt."""
        call, _ = self._call({})  # the raw input and call id are still in _CALL
        step = _RUN.get() or _Run(None, None, None)
        self._guard.refuse(
            call,
            f"the tool refused the arguments before they could be decided ({type(err).__name__})",
            principal=step.principal,
            task=step.task,
        )

    def _call(self, parsed: dict[str, Any]) -> tuple[ToolCall, str | None]:
        """The call as the model made it: raw arguments, injected ones left out."""
        pending = _CALL.get()
        if pending is not None:
            pending.reached = True
        raw, call_id = (pending.raw, pending.call_id) if pending else (parsed, None)
        args: Any = raw  # anything but a mapping or a string is refused by the guard
        if isinstance(raw, str):
            fields = self._inner.visible
            args = {fields[0] if fields else "input": raw}
        elif isinstance(raw, Mapping):
            injected = self._inner.injected
            args = {k: v for k, v in raw.items() if k not in injected}
        return ToolCall(self.name, args, call_id or f"call-{uuid.uuid4().hex[:16]}"), call_id

    def _denial(self, call_id: str | None) -> Callable[[Decision], Any]:
        def deny(decision: Decision) -> Any:
            if self._on_deny == "raise" or (self._on_deny == "auto" and call_id is None):
                raise ToolCallDenied(decision)
            message = ToolMessage(
                content=decision.instruction,
                tool_call_id=call_id or "",
                name=self.name,
                status="error",
            )
            if self.response_format == "content_and_artifact":
                return message, None
            return message if call_id else decision.instruction

        return deny


def _merged(
    parsed: dict[str, Any], decided: Mapping[str, object], final: Mapping[str, object]
) -> dict[str, Any]:
    """The inner tool's keyword arguments: as parsed, or with a human's edits applied."""
    if final is decided:
        return parsed
    return {**parsed, **final}


@dataclass(frozen=True)
class _Inner:
    """The guarded tool and what is worked out about it once, not on every call."""

    tool: BaseTool
    visible: tuple[str, ...]  # the arguments the model fills in
    injected: frozenset[str]  # arguments the framework fills in: never part of a decision
    sync_params: tuple[tuple[str, str], ...]  # (parameter, "config" | "run_manager")
    async_params: tuple[tuple[str, str], ...]

    @classmethod
    def of(cls, tool: BaseTool) -> _Inner:
        visible = tuple(_fields(tool.tool_call_schema))
        everything = set(_fields(tool.args_schema)) if tool.args_schema is not None else set()
        injected = frozenset(everything - set(visible)) | {"run_manager", "callbacks"}
        return cls(tool, visible, injected, _runtime_params(tool._run), _runtime_params(tool._arun))

    def sync_extras(self, kwargs: dict[str, Any], config: Any, manager: Any) -> dict[str, Any]:
        return _with_runtime(kwargs, self.sync_params, config, manager)

    def async_extras(self, kwargs: dict[str, Any], config: Any, manager: Any) -> dict[str, Any]:
        return _with_runtime(kwargs, self.async_params, config, manager)


def _fields(schema: Any) -> list[str]:
    if isinstance(schema, dict):
        return list(schema.get("properties", {}))
    return list(getattr(schema, "model_fields", {}))


def _runtime_params(method: Callable[..., Any]) -> tuple[tuple[str, str], ...]:
    """Which parameters of ``_run``/``_arun`` take the run's config and callback manager
    (LangChain passes them by the same rule)."""
    found = []
    for name, param in inspect.signature(method).parameters.items():
        if name == "run_manager":
            found.append((name, "run_manager"))
        elif param.annotation in (RunnableConfig, "RunnableConfig") or name == "config":
            found.append((name, "config"))
    return tuple(found)


def _with_runtime(
    kwargs: dict[str, Any], params: tuple[tuple[str, str], ...], config: Any, manager: Any
) -> dict[str, Any]:
    extra = {name: config if kind == "config" else manager for name, kind in params}
    return {**kwargs, **extra} if extra else kwargs


def guard_tool(
    tool: BaseTool,
    guard: Guard,
    *,
    intent: str | None = None,
    resource: str | None = None,
    on_deny: OnDeny = "auto",
) -> GuardedTool:
    """Wrap any `BaseTool` so every call to it is decided by ``guard``.

    Args:
        tool: the tool to guard (``@tool`` functions, ``StructuredTool``, subclasses, async).
        guard: the guard whose policy decides.
        intent: what the tool is for, if the policy's ``tools:`` map does not say.
        resource: the resource it acts on.
        on_deny: ``"auto"`` answers a tool call with an error `ToolMessage` the model can
            read and raises `ToolCallDenied` on direct invocation; ``"message"`` always
            answers; ``"raise"`` always raises.
    """
    if isinstance(tool, GuardedTool):
        return tool
    if intent is not None or resource is not None:
        guard.register(
            ToolSpec(
                name=tool.name,
                intent=intent or "unknown",
                resource=resource,
                description=tool.description,
            )
        )
    return _wrap(tool, guard, on_deny)


def _wrap(tool: BaseTool, guard: Guard, on_deny: OnDeny) -> GuardedTool:
    wrapped = GuardedTool(
        name=tool.name,
        description=tool.description,
        args_schema=tool.args_schema,
        return_direct=tool.return_direct,
        response_format=tool.response_format,
        handle_tool_error=tool.handle_tool_error,
        handle_validation_error=tool.handle_validation_error,
        tags=tool.tags,
        metadata=tool.metadata,
    )
    wrapped._guard, wrapped._inner, wrapped._on_deny = guard, _Inner.of(tool), on_deny
    return wrapped


def guard_tools(tools: Iterable[BaseTool], guard: Guard, **options: Any) -> list[GuardedTool]:
    """`guard_tool` for each tool."""
    return [guard_tool(t, guard, **options) for t in tools]


# -- agent middleware ----------------------------------------------------------------------


class GuardrailMiddleware(AgentMiddleware):
    """Decides every tool call a LangChain v1 agent's model emits, before the tool runs.

    The tool node gets each tool behind a `GuardedTool`, so the decision happens inside the
    tool's own run (and its span nests under a LangChain instrumentation's ``execute_tool``
    span). A deny becomes an error `ToolMessage` the model reads and the agent continues; a
    confirm pauses the graph with an interrupt (see `InterruptConfirmer`). A call to a tool the
    agent does not have is decided too, before the tool node reports it missing.
    """

    def __init__(
        self, guard: Guard, *, principal: Principal | None = None, task: Task | None = None
    ) -> None:
        """Args:
        guard: the guard whose policy decides.
        principal: who acts, when the run's context and config do not say.
        task: the task, when the run's context and config do not say.
        """
        super().__init__()
        self._guard = guard
        self._principal = principal
        self._task = task
        self._confirmer = InterruptConfirmer()
        self._wrapped: dict[int, tuple[BaseTool, GuardedTool]] = {}

    def wrap_tool_call(
        self, request: Any, handler: Callable[[Any], ToolMessage | Command[Any]]
    ) -> ToolMessage | Command[Any]:
        """Run the tool behind the guard; decide here if the agent has no such tool."""
        step = self._step(request)
        if request.tool is None:
            return self._guard.execute(
                self._call(request),
                lambda final: handler(_with_args(request, final)),
                on_deny=_message_for(request),
                principal=step.principal,
                task=step.task,
                confirmer=step.confirmer,
            )
        token = _RUN.set(step)
        try:
            return handler(request.override(tool=self._guarded(request.tool)))
        finally:
            _RUN.reset(token)

    async def awrap_tool_call(
        self, request: Any, handler: Callable[[Any], Awaitable[ToolMessage | Command[Any]]]
    ) -> ToolMessage | Command[Any]:
        """Async twin of `wrap_tool_call`."""
        step = self._step(request)
        if request.tool is None:
            return await self._guard.aexecute(
                self._call(request),
                lambda final: handler(_with_args(request, final)),
                on_deny=_message_for(request),
                principal=step.principal,
                task=step.task,
                confirmer=step.confirmer,
            )
        token = _RUN.set(step)
        try:
            return await handler(request.override(tool=self._guarded(request.tool)))
        finally:
            _RUN.reset(token)

    def _guarded(self, tool: BaseTool) -> GuardedTool:
        if isinstance(tool, GuardedTool):
            return tool
        kept = self._wrapped.get(id(tool))
        if kept is None or kept[0] is not tool:
            kept = (tool, _wrap(tool, self._guard, "message"))
            self._wrapped[id(tool)] = kept
        return kept[1]

    def _step(self, request: Any) -> _Run:
        principal, task = _subject_from(getattr(request, "runtime", None))
        return _Run(principal or self._principal, task or self._task, self._confirmer)

    @staticmethod
    def _call(request: Any) -> ToolCall:
        tc = request.tool_call
        call_id = tc.get("id") or f"call-{uuid.uuid4().hex[:16]}"
        return ToolCall(tc["name"], dict(tc.get("args") or {}), call_id)


def _with_args(request: Any, args: Mapping[str, object]) -> Any:
    return request.override(tool_call={**request.tool_call, "args": dict(args)})


def _message_for(request: Any) -> Callable[[Decision], ToolMessage]:
    tc = request.tool_call

    def message(decision: Decision) -> ToolMessage:
        return ToolMessage(
            content=decision.instruction,
            tool_call_id=tc.get("id") or "",
            name=tc["name"],
            status="error",
        )

    return message


def _subject_from(runtime: Any) -> tuple[Principal | None, Task | None]:
    context = getattr(runtime, "context", None)
    config = getattr(runtime, "config", None) or {}
    configurable = config.get("configurable", {}) if isinstance(config, Mapping) else {}
    principal = _field(context, "principal") or configurable.get("guardrail_principal")
    task = _field(context, "task") or configurable.get("guardrail_task")
    return _as(Principal, principal), _as(Task, task)


def _field(obj: Any, name: str) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def _as(model: Any, value: Any) -> Any:
    if value is None or isinstance(value, model):
        return value
    return model.model_validate(value)
