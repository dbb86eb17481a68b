"""Human confirmation, bound to the exact call that was decided.

A `ConfirmationRequest` carries a binding digest over the tool, the canonical arguments, the
principal, the task and the policy digest. The guard accepts an `Approval` only if it answers
that request's id with that binding, has not expired and has not been used before.
"""

from __future__ import annotations

import hashlib
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import IO, Any, Protocol, runtime_checkable

from guardrail._canonical import digest, redact_paths
from guardrail._model import Decision, Principal, Task


@dataclass(frozen=True, slots=True)
class ConfirmationRequest:
    """What a human is asked to approve: one exact call, until ``expires_at`` (epoch seconds)."""

    approval_id: str
    binding: str
    decision: Decision
    args: Mapping[str, Any]
    principal: Principal
    task: Task
    expires_at: float

    @property
    def tool(self) -> str:
        """The tool the call goes to."""
        return self.decision.tool

    def shown_args(self) -> Any:
        """The arguments as a human may see them: redacted where logging or scanners say."""
        hidden = self.decision.facts.logging.redact if self.decision.facts else ()
        return redact_paths(self.args, frozenset(hidden), lambda _: "[redacted]")


@dataclass(frozen=True, slots=True)
class Approval:
    """An answer to a `ConfirmationRequest`; ``approved=False`` is a rejection.

    With ``edited_args`` (and ``approved=True``) the human changed the call: the edited call
    is decided again from scratch, and runs only if that decision allows it.
    """

    approval_id: str
    binding: str
    approved: bool
    approver: str
    note: str = ""
    edited_args: Mapping[str, object] | None = None


@runtime_checkable
class Confirmer(Protocol):
    """Asks a human about a call. Return an `Approval`, or a bool for approve/reject."""

    def confirm(self, request: ConfirmationRequest) -> Approval | bool:
        """Answer one request."""


def binding_digest(decision: Decision, principal: Principal, task: Task) -> str:
    """The digest an approval must carry: tool, arguments, principal, task and policy."""
    return digest(
        {
            "tool": decision.tool,
            "args": decision.args_digest,
            "principal": principal.model_dump(mode="json"),
            "task": task.model_dump(mode="json", exclude={"context"}),
            "policy": decision.policy_digest,
        }
    )


class ApprovalStore(Protocol):
    """Where open approval requests live until answered: in memory (`ApprovalLedger`) or
    shared by several processes (`guardrail.approvals.SqliteApprovalStore`)."""

    def open(
        self, decision: Decision, args: Mapping[str, Any], principal: Principal, task: Task
    ) -> ConfirmationRequest:
        """Create (or re-create, for the same call) the request for a decision."""

    def redeem(self, approval: Approval) -> str | None:
        """Use an approval once: None if accepted, otherwise why it was refused."""

    def withdraw(self, approval_id: str) -> None:
        """Forget a request that will not be answered."""


def new_request(
    decision: Decision, args: Mapping[str, Any], principal: Principal, task: Task, ttl_s: float
) -> ConfirmationRequest:
    """The request for a decision. Its approval id is derived from the binding and the call
    id, so deciding the same call again (a graph resumed after a restart) asks about the
    same approval."""
    binding = binding_digest(decision, principal, task)
    approval_id = (
        "approval-" + hashlib.sha256(f"{binding}|{decision.call_id}".encode()).hexdigest()[:32]
    )
    return ConfirmationRequest(
        approval_id, binding, decision, args, principal, task, time.time() + ttl_s
    )


def judge_answer(approval: Approval, binding: str, expires_at: float) -> str | None:
    """Why an answer to an open request does not approve it, or None if it does."""
    if approval.binding != binding:
        return "the approval is bound to a different call"
    if time.time() > expires_at:
        return "the approval expired"
    if not approval.approved:
        return f"rejected by {approval.approver}" + (f": {approval.note}" if approval.note else "")
    return None


UNKNOWN_APPROVAL = "the approval does not answer an open request (unknown or already used)"


@dataclass
class ApprovalLedger:
    """Open confirmation requests, in memory; each is redeemed once, before it expires."""

    ttl_s: float = 300.0
    _open: dict[str, tuple[str, float]] = field(default_factory=dict)
    _used: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def open(
        self, decision: Decision, args: Mapping[str, Any], principal: Principal, task: Task
    ) -> ConfirmationRequest:
        """Create the request for a decision that needs confirmation."""
        request = new_request(decision, args, principal, task, self.ttl_s)
        with self._lock:
            self._open[request.approval_id] = (request.binding, request.expires_at)
        return request

    def redeem(self, approval: Approval) -> str | None:
        """Use an approval once. None if accepted, otherwise why it was refused."""
        with self._lock:
            entry = self._open.pop(approval.approval_id, None)
            if approval.approval_id in self._used:
                entry = None
            elif entry is not None:
                self._used.add(approval.approval_id)
        if entry is None:
            return UNKNOWN_APPROVAL
        return judge_answer(approval, *entry)

    def withdraw(self, approval_id: str) -> None:
        """Forget a request that will not be answered (timeout, error)."""
        with self._lock:
            self._open.pop(approval_id, None)


def as_approval(answer: object, request: ConfirmationRequest, approver: str) -> Approval:
    """Read a confirmer's answer strictly: only True or an `Approval` can approve."""
    if isinstance(answer, Approval):
        return answer
    return Approval(request.approval_id, request.binding, answer is True, approver)


class CallbackConfirmer:
    """Confirms by calling ``callback(request)``; it returns a bool or an `Approval`."""

    def __init__(
        self,
        callback: Callable[[ConfirmationRequest], Approval | bool],
        *,
        approver: str = "callback",
    ) -> None:
        self._callback = callback
        self._approver = approver

    def confirm(self, request: ConfirmationRequest) -> Approval | bool:
        """Ask the callback."""
        return as_approval(self._callback(request), request, self._approver)


class ConsoleConfirmer:
    """Asks on the terminal; without a terminal to ask on, it rejects."""

    def __init__(
        self,
        *,
        stdin: IO[str] | None = None,
        stdout: IO[str] | None = None,
        approver: str = "console",
    ) -> None:
        self._stdin = stdin
        self._stdout = stdout
        self._approver = approver

    def confirm(self, request: ConfirmationRequest) -> Approval | bool:
        """Show the call and ask yes/no."""
        stdin = self._stdin or sys.stdin
        stdout = self._stdout or sys.stdout
        if not stdin.isatty():
            return Approval(
                request.approval_id, request.binding, False, self._approver, "no terminal to ask on"
            )
        d = request.decision
        stdout.write(
            f"\nApproval needed: {d.tool} ({d.facts.intent if d.facts else '?'})\n"
            f"  reason:    {d.reason}\n  principal: {request.principal.id}\n"
            f"  task:      {request.task.goal or request.task.id}\n"
            f"  arguments: {_shown_args(request)}\nApprove this exact call? [y/N] "
        )
        stdout.flush()
        answer = stdin.readline().strip().lower()
        return Approval(
            request.approval_id, request.binding, answer in {"y", "yes"}, self._approver
        )


def _shown_args(request: ConfirmationRequest) -> str:
    shown = request.shown_args()
    return "".join(c if c.isprintable() else "?" for c in repr(shown))[:500]
