"""The task scope: who acts and for which task, for every call made inside ``guard.task(...)``.

Held in a context variable, so each thread and each asyncio task sees only its own scope.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, ExitStack
from contextvars import ContextVar, Token
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from opentelemetry.trace import Span

from guardrail._evidence import Recorder, subject_attributes
from guardrail._model import ANONYMOUS, NO_TASK, Principal, Task
from guardrail._subject import Subject


@dataclass(frozen=True, slots=True)
class Scope:
    """A subject plus its span attributes, both computed once when the task is entered."""

    subject: Subject
    attributes: dict[str, Any]

    @classmethod
    def of(cls, principal: Principal, task: Task) -> Scope:
        return cls(Subject.of(principal, task), subject_attributes(principal, task))


_DEFAULT = Scope.of(ANONYMOUS, NO_TASK)
_current: ContextVar[Scope] = ContextVar("guardrail_task", default=_DEFAULT)


def current_scope() -> Scope:
    """The scope of the innermost task entered in this context (anonymous if none)."""
    return _current.get()


def current_task() -> Task | None:
    """The task the current calls are judged against, or None outside any task."""
    scope = _current.get()
    return None if scope is _DEFAULT else scope.subject.task


class TaskScope(AbstractContextManager["TaskScope"]):
    """``with guard.task(...)`` / ``async with guard.task(...)``: enter a task for a principal."""

    def __init__(self, recorder: Recorder, principal: Principal, task: Task) -> None:
        self.principal = principal
        self.task = task
        self._recorder = recorder
        self._scope = Scope.of(principal, task)
        self._token: Token[Scope] | None = None
        self._stack: ExitStack | None = None
        self.span: Span | None = None

    def __enter__(self) -> TaskScope:
        if self._token is not None:
            raise RuntimeError("this task scope is already entered; create a new one")
        self._stack = ExitStack()
        self.span = self._stack.enter_context(self._recorder.task_span(self._scope.attributes))
        self._token = _current.set(self._scope)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._token is not None:
            _current.reset(self._token)
            self._token = None
        if self._stack is not None:
            self._stack.__exit__(exc_type, exc, tb)
            self._stack = None

    async def __aenter__(self) -> TaskScope:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)
