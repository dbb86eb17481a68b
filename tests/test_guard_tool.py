"""@guard.tool and confirmation: the pipeline around plain sync and async functions."""

from __future__ import annotations

import asyncio
import inspect
import io
import threading
import time
from typing import Any

import pytest

from guardrail import (
    Approval,
    CallbackConfirmer,
    ConfigurationError,
    ConfirmationRequest,
    ConsoleConfirmer,
    Decision,
    Effect,
    Guard,
    OutcomePolicy,
    Principal,
    ToolCallDenied,
)
from tests.conftest import attrs

BUYER = Principal(id="agent:buyer", roles=("buyer",))
SHOP = "https://acme.example/shop"


def make_tool(guard: Guard, ran: list[Any], **options: Any):
    @guard.tool(intent="purchase", resource="order", **options)
    def buy_item(item: str, amount: float, vendor_url: str = SHOP) -> str:
        """Buy an item."""
        ran.append((item, amount))
        return f"bought {item}"

    return buy_item


def test_allowed_calls_run_and_denied_calls_raise(shop_guard: Guard) -> None:
    ran: list[Any] = []
    buy_item = make_tool(shop_guard, ran)
    with shop_guard.task("restock", principal=BUYER):
        assert buy_item("chair", 120.0) == "bought chair"
        with pytest.raises(ToolCallDenied) as info:
            buy_item("gpu", 9000.0, "https://unknown.example")
    assert ran == [("chair", 120.0)]
    assert info.value.decision.effect is Effect.DENY
    assert info.value.decision.rule_ids == ("approved-suppliers-only",)
    assert "Do not retry" in str(info.value)


def test_on_deny_callable_returns_a_value(shop_guard: Guard) -> None:
    ran: list[Any] = []
    buy_item = make_tool(shop_guard, ran, on_deny=lambda d: f"blocked: {d.rule_ids[0]}")
    with shop_guard.task("restock", principal=BUYER):
        assert buy_item("gpu", 1.0, "https://unknown.example") == "blocked: approved-suppliers-only"
    assert ran == []


def test_the_wrapper_keeps_metadata_but_hides_the_raw_function(shop_guard: Guard) -> None:
    buy_item = make_tool(shop_guard, [])
    assert buy_item.__name__ == "buy_item" and buy_item.__doc__ == "Buy an item."
    assert list(inspect.signature(buy_item).parameters) == ["item", "amount", "vendor_url"]
    assert not hasattr(buy_item, "__wrapped__")
    assert inspect.unwrap(buy_item) is buy_item
    assert buy_item.guardrail_tool.intent == "purchase"


def test_async_tools_are_guarded(shop_guard: Guard) -> None:
    ran: list[str] = []

    @shop_guard.tool(intent="purchase")
    async def buy_item(item: str, amount: float, vendor_url: str) -> str:
        ran.append(item)
        return item

    async def main() -> None:
        async with shop_guard.task("restock", principal=BUYER):
            assert await buy_item("chair", 1.0, SHOP) == "chair"
            with pytest.raises(ToolCallDenied):
                await buy_item("gpu", 1.0, "https://x.example")

    asyncio.run(main())
    assert ran == ["chair"]


def test_tool_errors_propagate_and_the_call_was_allowed(shop_guard: Guard) -> None:
    @shop_guard.tool(intent="purchase")
    def buy_item(item: str, amount: float, vendor_url: str) -> str:
        raise RuntimeError("supplier down")

    with shop_guard.task("restock", principal=BUYER), pytest.raises(RuntimeError):
        buy_item("chair", 1.0, SHOP)


def test_registration_refuses_lookalike_and_conflicting_names(shop_guard: Guard) -> None:
    with pytest.raises(ConfigurationError, match="not allowed"):
        shop_guard.tool(name="buy_іtem", intent="purchase")(lambda: None)
    shop_guard.tool(name="refund", intent="purchase")(lambda: None)
    with pytest.raises(ConfigurationError, match="already registered"):
        shop_guard.tool(name="refund", intent="read")(lambda: None)


# -- confirmation ------------------------------------------------------------------------


def confirm_guard(policy: OutcomePolicy, confirmer: Any, **options: Any) -> Guard:
    return Guard(policy, confirmer=confirmer, **options)


def test_no_confirmer_means_deny(shop_guard: Guard) -> None:
    ran: list[Any] = []
    buy_item = make_tool(shop_guard, ran)
    with shop_guard.task("restock", principal=BUYER), pytest.raises(ToolCallDenied) as info:
        buy_item("desk", 900.0)
    assert "guardrail:no-confirmer" in info.value.decision.rule_ids and ran == []


def test_an_approval_runs_the_exact_call(shop_policy: OutcomePolicy) -> None:
    seen: list[ConfirmationRequest] = []

    def approve(request: ConfirmationRequest) -> bool:
        seen.append(request)
        return True

    guard = confirm_guard(shop_policy, CallbackConfirmer(approve, approver="alice"))
    ran: list[Any] = []
    buy_item = make_tool(guard, ran)
    with guard.task("restock", principal=BUYER):
        assert buy_item("desk", 900.0) == "bought desk"
    request = seen[0]
    assert request.tool == "buy_item" and request.args["amount"] == 900.0
    assert request.binding.startswith("sha256:") and request.principal == BUYER
    assert ran == [("desk", 900.0)]


@pytest.mark.parametrize("answer", [False, None, "yes", 1, "approve"])
def test_anything_but_true_or_a_matching_approval_is_a_rejection(
    shop_policy: OutcomePolicy, answer: object
) -> None:
    guard = confirm_guard(shop_policy, CallbackConfirmer(lambda r: answer))  # type: ignore[arg-type,return-value]
    ran: list[Any] = []
    buy_item = make_tool(guard, ran)
    with guard.task("restock", principal=BUYER), pytest.raises(ToolCallDenied) as info:
        buy_item("desk", 900.0)
    assert "guardrail:not-confirmed" in info.value.decision.rule_ids and ran == []


def test_forged_and_replayed_approvals_are_refused(shop_policy: OutcomePolicy) -> None:
    kept: list[Approval] = []

    def forge(request: ConfirmationRequest) -> Approval:
        return Approval(request.approval_id, "sha256:" + "0" * 64, True, "mallory")

    def keep(request: ConfirmationRequest) -> Approval:
        approval = Approval(request.approval_id, request.binding, True, "alice")
        kept.append(approval)
        return approval

    def replay(request: ConfirmationRequest) -> Approval:
        return kept[0]

    ran: list[Any] = []
    for confirmer, reason in (
        (forge, "bound to a different call"),
        (keep, None),
        (replay, "unknown or already used"),
    ):
        guard = confirm_guard(shop_policy, CallbackConfirmer(confirmer))
        buy_item = make_tool(guard, ran)
        with guard.task("restock", principal=BUYER):
            if reason is None:
                buy_item("desk", 900.0)
            else:
                with pytest.raises(ToolCallDenied, match=reason):
                    buy_item("desk", 900.0)
    assert ran == [("desk", 900.0)]


def test_arguments_changed_after_the_approval_are_refused(shop_policy: OutcomePolicy) -> None:
    order = {"item": "desk", "qty": 1}

    def approve_then_tamper(request: ConfirmationRequest) -> bool:
        order["qty"] = 500  # another thread changes the object the agent passed
        return True

    guard = confirm_guard(shop_policy, CallbackConfirmer(approve_then_tamper))
    ran: list[Any] = []

    @guard.tool(intent="purchase")
    def buy_item(order: dict[str, Any], amount: float, vendor_url: str) -> None:
        ran.append(dict(order))

    with guard.task("restock", principal=BUYER), pytest.raises(ToolCallDenied) as info:
        buy_item(order, 900.0, SHOP)
    assert "guardrail:args-changed" in info.value.decision.rule_ids and ran == []


def test_a_failing_or_slow_confirmer_denies(shop_policy: OutcomePolicy) -> None:
    def boom(request: ConfirmationRequest) -> bool:
        raise ConnectionError("approval service down")

    def slow(request: ConfirmationRequest) -> bool:
        time.sleep(2)
        return True

    for confirmer, rule in (
        (boom, "guardrail:confirmer-error"),
        (slow, "guardrail:confirm-timeout"),
    ):
        guard = confirm_guard(shop_policy, CallbackConfirmer(confirmer), confirm_timeout_s=0.2)
        ran: list[Any] = []
        buy_item = make_tool(guard, ran)
        with guard.task("restock", principal=BUYER), pytest.raises(ToolCallDenied) as info:
            buy_item("desk", 900.0)
        assert rule in info.value.decision.rule_ids and ran == []


def test_expired_approvals_are_refused(shop_policy: OutcomePolicy) -> None:
    def late(request: ConfirmationRequest) -> bool:
        time.sleep(0.05)
        return True

    guard = confirm_guard(shop_policy, CallbackConfirmer(late), approval_ttl_s=0.01)
    buy_item = make_tool(guard, [])
    with guard.task("restock", principal=BUYER), pytest.raises(ToolCallDenied, match="expired"):
        buy_item("desk", 900.0)


def test_async_confirmers_and_timeouts(shop_policy: OutcomePolicy) -> None:
    class Async:
        def __init__(self, delay: float) -> None:
            self.delay = delay

        def confirm(self, request: ConfirmationRequest) -> bool:  # pragma: no cover - unused
            raise AssertionError("aconfirm should be used")

        async def aconfirm(self, request: ConfirmationRequest) -> Approval:
            await asyncio.sleep(self.delay)
            return Approval(request.approval_id, request.binding, True, "async-human")

    async def run(delay: float) -> str | Decision:
        guard = confirm_guard(shop_policy, Async(delay), confirm_timeout_s=0.2)

        @guard.tool(intent="purchase", on_deny=lambda d: d)
        async def buy_item(item: str, amount: float, vendor_url: str) -> str:
            return "ran"

        async with guard.task("restock", principal=BUYER):
            return await buy_item("desk", 900.0, SHOP)

    assert asyncio.run(run(0.0)) == "ran"
    late = asyncio.run(run(1.0))
    assert isinstance(late, Decision) and "guardrail:confirm-timeout" in late.rule_ids


class FakeTty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_console_confirmer_asks_on_a_terminal_only(shop_policy: OutcomePolicy) -> None:
    out = io.StringIO()
    yes = confirm_guard(shop_policy, ConsoleConfirmer(stdin=FakeTty("y\n"), stdout=out))
    with yes.task("restock", principal=BUYER):
        assert make_tool(yes, [], name="buy2")("desk", 900.0) == "bought desk"
    assert "Approve this exact call?" in out.getvalue() and "900.0" in out.getvalue()
    no_tty = confirm_guard(shop_policy, ConsoleConfirmer(stdin=io.StringIO("y\n"), stdout=out))
    with (
        no_tty.task("restock", principal=BUYER),
        pytest.raises(ToolCallDenied, match="no terminal"),
    ):
        make_tool(no_tty, [])("desk", 900.0)


def test_single_use_under_concurrency(shop_policy: OutcomePolicy) -> None:
    """100 threads present the same approval; exactly one call runs."""
    gate = threading.Barrier(100)
    first: list[Approval] = []
    lock = threading.Lock()

    def shared(request: ConfirmationRequest) -> Approval:
        with lock:
            if not first:
                first.append(Approval(request.approval_id, request.binding, True, "alice"))
        gate.wait()
        return first[0]

    guard = confirm_guard(shop_policy, CallbackConfirmer(shared))
    ran: list[Any] = []
    buy_item = make_tool(guard, ran, on_deny=lambda d: None)

    def worker() -> None:
        with guard.task("restock", principal=BUYER):
            buy_item("desk", 900.0)

    threads = [threading.Thread(target=worker) for _ in range(100)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(ran) == 1


def test_an_edited_call_is_decided_again_and_runs_with_the_edit(
    shop_policy: OutcomePolicy,
) -> None:
    def edit(request: ConfirmationRequest) -> Approval:
        if request.args["amount"] > 500:
            edited = {**request.args, "amount": 450.0}
            return Approval(request.approval_id, request.binding, True, "alice", edited_args=edited)
        return Approval(request.approval_id, request.binding, True, "alice")

    guard = confirm_guard(shop_policy, CallbackConfirmer(edit))
    ran: list[Any] = []
    buy_item = make_tool(guard, ran)
    with guard.task("restock", principal=BUYER):
        assert buy_item("desk", 900.0) == "bought desk"
    assert ran == [("desk", 450.0)]  # the edited amount, allowed by the budget rule


def test_an_edit_that_breaks_the_policy_is_denied(shop_policy: OutcomePolicy) -> None:
    def edit(request: ConfirmationRequest) -> Approval:
        edited = {**request.args, "vendor_url": "https://evil.example/"}
        return Approval(request.approval_id, request.binding, True, "alice", edited_args=edited)

    guard = confirm_guard(shop_policy, CallbackConfirmer(edit))
    ran: list[Any] = []
    with guard.task("restock", principal=BUYER), pytest.raises(ToolCallDenied) as info:
        make_tool(guard, ran)("desk", 900.0)
    assert info.value.decision.rule_ids == ("approved-suppliers-only",) and ran == []


def test_endless_edits_are_cut_off(shop_policy: OutcomePolicy) -> None:
    def edit(request: ConfirmationRequest) -> Approval:
        edited = {**request.args, "amount": request.args["amount"] + 1}
        return Approval(request.approval_id, request.binding, True, "alice", edited_args=edited)

    guard = confirm_guard(shop_policy, CallbackConfirmer(edit))
    with guard.task("restock", principal=BUYER), pytest.raises(ToolCallDenied, match="edits"):
        make_tool(guard, [])("desk", 900.0)


class Paused(Exception):
    """Stands in for a framework's 'pause the run here' signal."""


class InlinePausing:
    inline = True
    passthrough = (Paused,)

    def __init__(self) -> None:
        self.threads: list[str] = []

    def confirm(self, request: ConfirmationRequest) -> bool:
        self.threads.append(threading.current_thread().name)
        raise Paused(request.approval_id)


def test_inline_confirmers_run_in_the_caller_and_may_pause(
    shop_policy: OutcomePolicy, provider: Any, exporter: Any
) -> None:
    confirmer = InlinePausing()
    guard = Guard(shop_policy, confirmer=confirmer, tracer_provider=provider)
    ran: list[Any] = []
    with guard.task("restock", principal=BUYER), pytest.raises(Paused):
        make_tool(guard, ran)("desk", 900.0)
    assert ran == [] and confirmer.threads == [threading.current_thread().name]
    span = next(s for s in exporter.get_finished_spans() if s.name == "execute_tool buy_item")
    assert attrs(span)["guardrail.outcome"] == "awaiting-approval"
    assert attrs(span)["guardrail.decision"] == "confirm"


def test_explicit_principal_and_confirmer_override_the_scope(shop_policy: OutcomePolicy) -> None:
    from guardrail import ToolCall

    guard = Guard(shop_policy)  # no confirmer of its own
    call = ToolCall("buy_item", {"item": "desk", "amount": 900.0, "vendor_url": SHOP})
    result = guard.execute(
        call,
        lambda args: f"ran {args['amount']}",
        principal=BUYER,
        confirmer=CallbackConfirmer(lambda r: True),
    )
    assert result == "ran 900.0"


def test_decision_listeners_see_every_final_decision_and_cannot_break_calls(
    shop_guard: Guard,
) -> None:
    seen: list[Decision] = []

    def broken(decision: Decision) -> None:
        raise RuntimeError("metrics backend down")

    buy_item = make_tool(shop_guard, [])
    with shop_guard.task("restock", principal=BUYER), shop_guard.listening(seen.append):
        with shop_guard.listening(broken):
            assert buy_item("chair", 1.0) == "bought chair"
        with pytest.raises(ToolCallDenied):
            buy_item("gpu", 1.0, "https://evil.example/")
    assert [d.effect for d in seen] == [Effect.ALLOW, Effect.DENY]
    with shop_guard.task("restock", principal=BUYER):
        buy_item("chair", 2.0)
    assert len(seen) == 2  # no longer listening
