"""Asking a human about one call: opening the request, asking the confirmer with a deadline
(failing closed), and reading the answer against the request it must match.

A confirmer that sets ``inline = True`` is called in the calling thread (LangGraph's
``interrupt()`` must run there); the exception types in its ``passthrough`` are control flow
(a graph pausing for a human) and propagate after the pending decision is recorded.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from opentelemetry.trace import Span

from guardrail import _semconv as sc
from guardrail._confirm import ApprovalStore, ConfirmationRequest, Confirmer, as_approval
from guardrail._evidence import Recorder
from guardrail._model import Decision, Effect
from guardrail._task import Scope


def denied(decision: Decision, rule_id: str, reason: str) -> Decision:
    """``decision`` turned into a deny by a built-in check, keeping what led to it."""
    return replace(
        decision,
        effect=Effect.DENY,
        rule_ids=(*decision.rule_ids, rule_id),
        reason=reason,
        errors=(*decision.errors, reason),
        instruction=(
            f"The call to `{decision.tool}` was not run ({reason}). Do not "
            f"retry it; ask the user how to proceed."
        ),
    )


def passthrough(confirmer: Confirmer) -> tuple[type[BaseException], ...]:
    """Exception types the confirmer raises on purpose (a paused graph), never a failure."""
    return tuple(getattr(confirmer, "passthrough", ()))


def ask_sync(confirmer: Confirmer, request: ConfirmationRequest, timeout_s: float) -> object:
    """The confirmer's answer, or a deny if it failed or took longer than ``timeout_s``."""
    if getattr(confirmer, "inline", False):
        try:
            return confirmer.confirm(request)
        except passthrough(confirmer):
            raise
        except Exception as err:
            return _failed(request, err)
    box: list[object] = []

    def ask() -> None:
        try:
            box.append(confirmer.confirm(request))
        except Exception as err:
            box.append(_failed(request, err))

    # a daemon thread, so a human who never answers cannot keep the process alive
    worker = threading.Thread(target=ask, name="guardrail-confirm", daemon=True)
    worker.start()
    worker.join(timeout_s)
    return box[0] if box else _timed_out(request, timeout_s)


async def ask_async(confirmer: Confirmer, request: ConfirmationRequest, timeout_s: float) -> object:
    """Async twin of `ask_sync`: ``aconfirm`` if the confirmer has it, else ``confirm``."""
    if getattr(confirmer, "inline", False) and not hasattr(confirmer, "aconfirm"):
        return ask_sync(confirmer, request, timeout_s)
    aconfirm = getattr(confirmer, "aconfirm", None)
    try:
        pending = aconfirm(request) if aconfirm else asyncio.to_thread(confirmer.confirm, request)
        return await asyncio.wait_for(pending, timeout_s)
    except passthrough(confirmer):
        raise
    except asyncio.TimeoutError:
        return _timed_out(request, timeout_s)
    except Exception as err:
        return _failed(request, err)


def open_request(
    recorder: Recorder,
    store: ApprovalStore,
    span: Span,
    decision: Decision,
    args: Mapping[str, Any],
    scope: Scope,
    confirmer: Confirmer | None,
) -> ConfirmationRequest | Decision:
    """Open the approval request for a confirm decision, or deny if nobody can be asked."""
    if confirmer is None:
        return denied(
            decision,
            "guardrail:no-confirmer",
            f"{decision.reason}; it needs a human approval and no confirmer is configured",
        )
    subject = scope.subject
    request = store.open(decision, args, subject.principal, subject.task)
    recorder.event(
        span,
        sc.EVENT_CONFIRM_REQUESTED,
        {sc.APPROVAL_ID: request.approval_id, sc.REASON: decision.reason},
    )
    return request


def close_request(
    recorder: Recorder,
    store: ApprovalStore,
    span: Span,
    decision: Decision,
    request: ConfirmationRequest,
    answer: object,
) -> tuple[Decision, Mapping[str, object] | None]:
    """The final decision after an answer, and the edited arguments if the human edited."""
    if isinstance(answer, Decision):  # the confirmer failed or timed out
        store.withdraw(request.approval_id)
        return answer, None
    approval = as_approval(answer, request, "confirmer")
    problem = store.redeem(approval)
    verdict = "refused" if problem else "edited" if approval.edited_args else "approved"
    recorder.event(
        span,
        sc.EVENT_CONFIRM_ANSWERED,
        {
            sc.APPROVAL_ID: request.approval_id,
            sc.APPROVER: approval.approver[:128],
            sc.DECISION: verdict,
        },
    )
    if problem is not None:
        reason = f"{decision.reason}; not confirmed: {problem}"
        return denied(decision, "guardrail:not-confirmed", reason), None
    if approval.edited_args is not None:
        return decision, approval.edited_args
    allowed = replace(
        decision,
        effect=Effect.ALLOW,
        approval_id=request.approval_id,
        approver=approval.approver,
        instruction=f"The call to `{decision.tool}` was approved and runs.",
    )
    return allowed, None


def _failed(request: ConfirmationRequest, err: Exception) -> Decision:
    return denied(
        request.decision,
        "guardrail:confirmer-error",
        f"the confirmer failed ({type(err).__name__})",
    )


def _timed_out(request: ConfirmationRequest, timeout_s: float) -> Decision:
    return denied(request.decision, "guardrail:confirm-timeout", f"no answer within {timeout_s:g}s")
