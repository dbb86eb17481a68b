"""Asking a confirmer about one request, with a deadline, failing closed.

A confirmer that sets ``inline = True`` is called in the calling thread (LangGraph's
``interrupt()`` must run there); the exception types in its ``passthrough`` are control flow
(a graph pausing for a human) and propagate after the pending decision is recorded.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import replace

from guardrail._confirm import ConfirmationRequest, Confirmer
from guardrail._model import Decision, Effect


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


def _failed(request: ConfirmationRequest, err: Exception) -> Decision:
    return denied(
        request.decision,
        "guardrail:confirmer-error",
        f"the confirmer failed ({type(err).__name__})",
    )


def _timed_out(request: ConfirmationRequest, timeout_s: float) -> Decision:
    return denied(request.decision, "guardrail:confirm-timeout", f"no answer within {timeout_s:g}s")
