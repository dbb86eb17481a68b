"""Who acts and for which task, in the form the policy reads, converted for CEL once."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import cel

from guardrail._model import Principal, Task

SUBJECT_ROOTS = frozenset({"principal", "task", "context"})


@dataclass(frozen=True, slots=True)
class Subject:
    """Who acts and for which task, with their policy views computed once per task."""

    principal: Principal
    task: Task
    principal_facts: Mapping[str, Any]
    task_facts: Mapping[str, Any]
    _contexts: threading.local = field(default_factory=threading.local, compare=False, repr=False)

    @classmethod
    def of(cls, principal: Principal, task: Task) -> Subject:
        return cls(principal, task, principal.to_facts(), task.to_facts())

    def cel_context(self, roots: frozenset[str]) -> Any:
        """A CEL context holding this subject's share (principal, task, context) of ``roots``.

        Converting values into CEL is the costliest part of a decision, so the subject's
        share is converted at most once per thread; each call then adds only its own
        variables. One context per thread, because a decision writes its call's variables
        into it.
        """
        local = self._contexts
        if not hasattr(local, "value"):
            local.value, local.added = cel.Context(), set()
        for root in (roots & SUBJECT_ROOTS) - local.added:
            local.value.add_variable(root, self._view(root))
            local.added.add(root)
        return local.value

    def forget(self, root: str) -> None:
        """This thread's context now holds a call's own ``root``; re-add the subject's next time."""
        added = getattr(self._contexts, "added", None)
        if added is not None:
            added.discard(root)

    def _view(self, root: str) -> Any:
        if root == "principal":
            return self.principal_facts
        if root == "task":
            return self.task_facts
        return dict(self.task.context)
