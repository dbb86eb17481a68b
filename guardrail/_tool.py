"""``@guard.tool``: plain Python functions (sync and async) behind the guard.

The wrapper copies the function's name, docs and signature but not ``__wrapped__``, so
``inspect.unwrap`` cannot hand the raw function back to an agent framework.
"""

from __future__ import annotations

import inspect
import re
import threading
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from guardrail._errors import ConfigurationError
from guardrail._model import Decision, ToolCall
from guardrail._policy import ToolSpec
from guardrail.credentials import current_credential

if TYPE_CHECKING:
    from guardrail._guard import Guard

F = TypeVar("F", bound=Callable[..., Any])
OnDeny = Literal["raise"] | Callable[[Decision], Any]
TOOL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,127}$")
_RECEIVERS = frozenset({"self", "cls"})
# filled in by the guard, never by the caller, never decided on
INJECTED = "credential"


def check_tool_name(name: str) -> None:
    """Tool names are plain ASCII identifiers, so no look-alike can be registered."""
    if not TOOL_NAME.match(name):
        raise ConfigurationError(
            f"tool name {name!r} is not allowed: use ASCII letters, digits, '_', '.' or '-' "
            f"(starting with a letter or '_'); pass name=... to choose one"
        )


def register_tool(tools: dict[str, ToolSpec], lock: threading.Lock, spec: ToolSpec) -> None:
    """Add ``spec`` to a guard's registry; a different spec under the same name is an error."""
    check_tool_name(spec.name)
    with lock:
        existing = tools.get(spec.name)
        if existing is not None and existing != spec:
            raise ConfigurationError(
                f"tool '{spec.name}' is already registered with a different declaration; "
                f"give the second tool another name="
            )
        tools[spec.name] = spec


def guard_function(
    guard: Guard,
    fn: F,
    *,
    intent: str | None = None,
    resource: str | None = None,
    name: str | None = None,
    description: str | None = None,
    reads: Iterable[str] = (),
    writes: Iterable[str] = (),
    destinations: Iterable[str] = (),
    environment_arg: str | None = None,
    tenant_arg: str | None = None,
    on_deny: OnDeny = "raise",
) -> F:
    """Wrap ``fn`` so every call goes through ``guard``'s pipeline."""
    if not callable(fn):
        raise ConfigurationError(f"@guard.tool needs a function, got {type(fn).__name__}")
    if on_deny != "raise" and not callable(on_deny):
        raise ConfigurationError("on_deny must be 'raise' or a callable taking the Decision")
    tool_name = unicodedata.normalize("NFKC", name or fn.__name__)
    doc = description or inspect.getdoc(fn) or None
    spec = ToolSpec(
        name=tool_name,
        intent=intent or "unknown",
        resource=resource,
        description=doc,
        reads=tuple(reads),
        writes=tuple(writes),
        destinations=tuple(destinations),
        environment_arg=environment_arg,
        tenant_arg=tenant_arg,
    )
    guard.register(spec)
    signature = inspect.signature(fn)
    takes_credential = INJECTED in signature.parameters
    public = signature.replace(
        parameters=[p for p in signature.parameters.values() if p.name != INJECTED]
    )

    def call_of(
        args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[ToolCall, Callable[[Mapping[str, object]], Any]]:
        bound = public.bind(*args, **kwargs)  # a caller cannot hand in a credential
        bound.apply_defaults()
        decided = {
            k: v for k, v in bound.arguments.items() if k not in _RECEIVERS and k != INJECTED
        }

        def run(final: Mapping[str, object]) -> Any:
            if final is decided and not takes_credential:  # the common case, as called
                return fn(*bound.args, **bound.kwargs)
            kept = {k: v for k, v in bound.arguments.items() if k in _RECEIVERS}
            if takes_credential:
                kept[INJECTED] = current_credential()
            merged = {**kept, **final}
            ordered = {n: merged[n] for n in signature.parameters if n in merged}
            again = inspect.BoundArguments(signature, ordered)  # as decided, or as edited
            return fn(*again.args, **again.kwargs)

        return ToolCall(tool_name, decided), run

    if inspect.iscoroutinefunction(fn):

        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            call, run = call_of(args, kwargs)
            return await guard.aexecute(call, run, description=doc, on_deny=on_deny)
    else:

        def wrapper(*args: Any, **kwargs: Any) -> Any:  # type: ignore[misc]
            call, run = call_of(args, kwargs)
            return guard.execute(call, run, description=doc, on_deny=on_deny)

    _copy_metadata(wrapper, fn, public)
    wrapper.guardrail_tool = spec  # type: ignore[attr-defined]
    return wrapper  # type: ignore[return-value]


def _copy_metadata(wrapper: Any, fn: Any, signature: inspect.Signature) -> None:
    # like functools.wraps, minus __wrapped__: the raw function must not be one attribute away
    for attr in ("__module__", "__name__", "__qualname__", "__doc__"):
        value = getattr(fn, attr, None)
        if value is not None:
            setattr(wrapper, attr, value)
    wrapper.__annotations__ = dict(getattr(fn, "__annotations__", {}))
    wrapper.__signature__ = signature
