"""Approval channels and stores: signed HTTP approvals, quorum, single use across threads."""

from __future__ import annotations

import json
import random
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from guardrail import (
    Approval,
    CallbackConfirmer,
    ConfirmationRequest,
    Effect,
    Guard,
    OutcomePolicy,
    Principal,
    ToolCall,
    ToolCallDenied,
)
from guardrail.approvals import (
    SIGNATURE,
    TIMESTAMP,
    HttpApprovalConfirmer,
    QuorumConfirmer,
    SqliteApprovalStore,
    sign,
)
from tests.conftest import attrs

SECRET = b"shared-approval-secret"
URL = "https://approvals.test/requests"
BUYER = Principal(id="agent:buyer", roles=("buyer",))
DESK = {"item": "desk", "amount": 900.0, "vendor_url": "https://acme.example/shop"}


def signed(body: dict[str, Any], secret: bytes = SECRET, age_s: float = 0) -> httpx.Response:
    raw = json.dumps(body).encode()
    timestamp = str(int(time.time() - age_s))
    return httpx.Response(
        200,
        content=raw,
        headers={
            "Content-Type": "application/json",
            TIMESTAMP: timestamp,
            SIGNATURE: sign(secret, timestamp, raw),
        },
    )


def answer_from(request: httpx.Request, status: str = "approved", **changes: Any) -> dict[str, Any]:
    sent = json.loads(request.content)
    return {
        "approval_id": sent["approval_id"],
        "binding": sent["binding"],
        "status": status,
        "approver": "alice@example.com",
        **changes,
    }


def run(guard: Guard) -> Any:
    return guard.execute(
        ToolCall("buy_item", dict(DESK)), lambda a: "bought", on_deny=lambda d: d, principal=BUYER
    )


@respx.mock
def test_a_signed_approval_runs_the_call_and_names_the_approver(
    shop_policy: OutcomePolicy, exporter: Any, provider: Any
) -> None:
    seen: list[httpx.Request] = []

    def service(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return signed(answer_from(request))

    respx.post(URL).mock(side_effect=service)
    guard = Guard(
        shop_policy, confirmer=HttpApprovalConfirmer(URL, SECRET), tracer_provider=provider
    )
    assert run(guard) == "bought"
    request = seen[0]
    body = request.content
    assert request.headers[SIGNATURE] == sign(SECRET, request.headers[TIMESTAMP], body)
    assert json.loads(body)["args"]["amount"] == 900.0
    span = next(s for s in exporter.get_finished_spans() if s.name == "execute_tool buy_item")
    answered = next(e for e in span.events if e.name == "guardrail.confirmation.answered")
    assert attrs(answered)["guardrail.approval.approver"] == "alice@example.com"


@respx.mock
def test_pending_answers_are_polled(shop_policy: OutcomePolicy) -> None:
    respx.post(URL).mock(side_effect=lambda r: signed(answer_from(r, "pending")))
    state: dict[str, Any] = {"polls": 0, "answer": None}

    def poll(request: httpx.Request) -> httpx.Response:
        state["polls"] += 1
        status = "approved" if state["polls"] >= 3 else "pending"
        return signed({**state["answer"], "status": status})

    def capture(request: httpx.Request) -> httpx.Response:
        state["answer"] = answer_from(request, "pending")
        respx.get(f"{URL}/{state['answer']['approval_id']}").mock(side_effect=poll)
        return signed(state["answer"])

    respx.post(URL).mock(side_effect=capture)
    guard = Guard(shop_policy, confirmer=HttpApprovalConfirmer(URL, SECRET, poll_interval_s=0.01))
    assert run(guard) == "bought" and state["polls"] == 3


@respx.mock
@pytest.mark.parametrize(
    "make",
    [
        lambda r: signed(answer_from(r), secret=b"wrong-key"),  # forged
        lambda r: httpx.Response(200, json=answer_from(r)),  # unsigned
        lambda r: signed(answer_from(r), age_s=3600),  # stale
        lambda r: signed(answer_from(r, binding="sha256:" + "0" * 64)),  # other call
        lambda r: signed(answer_from(r, approval_id="approval-other")),  # other request
        lambda r: signed(answer_from(r, "rejected", note="not this quarter")),  # a no
        lambda r: httpx.Response(500),  # broken service
        lambda r: signed(["not", "an", "object"]),  # type: ignore[arg-type]
    ],
)
def test_anything_but_a_true_signed_yes_is_a_deny(shop_policy: OutcomePolicy, make: Any) -> None:
    respx.post(URL).mock(side_effect=make)
    d = run(Guard(shop_policy, confirmer=HttpApprovalConfirmer(URL, SECRET)))
    assert d.effect is Effect.DENY


@respx.mock
def test_no_answer_in_time_is_a_deny(shop_policy: OutcomePolicy) -> None:
    respx.post(URL).mock(side_effect=lambda r: signed(answer_from(r, "pending")))
    respx.get(url__startswith=URL + "/").mock(
        side_effect=lambda r: signed({"approval_id": "x", "binding": "y", "status": "pending"})
    )
    confirmer = HttpApprovalConfirmer(URL, SECRET, timeout_s=0.2, poll_interval_s=0.05)
    d = run(Guard(shop_policy, confirmer=confirmer))
    assert d.effect is Effect.DENY and "no answer in time" in d.reason


def human(name: str, yes: bool) -> CallbackConfirmer:
    return CallbackConfirmer(lambda r: Approval(r.approval_id, r.binding, yes, name))


@pytest.mark.parametrize(
    ("voters", "required", "outcome"),
    [
        ([("ann", True), ("bob", True), ("cy", False)], 2, "bought"),
        ([("ann", True), ("bob", False), ("cy", False)], 2, Effect.DENY),
        ([("ann", True), ("ann", True), ("cy", False)], 2, Effect.DENY),  # one person, two votes
        ([("ann", True), ("bob", True), ("cy", True)], 3, "bought"),
    ],
)
def test_m_of_n_quorum(
    shop_policy: OutcomePolicy, voters: list[tuple[str, bool]], required: int, outcome: Any
) -> None:
    quorum = QuorumConfirmer([human(n, yes) for n, yes in voters], required)
    result = run(Guard(shop_policy, confirmer=quorum))
    if isinstance(outcome, Effect):
        assert result.effect is outcome
    else:
        assert result == outcome


def test_quorum_rejects_impossible_sizes() -> None:
    with pytest.raises(ValueError, match="between 1 and 2"):
        QuorumConfirmer([human("a", True), human("b", True)], 3)


@pytest.mark.parametrize("store", ["memory", "sqlite"])
def test_one_approval_used_by_100_threads_runs_once(
    shop_policy: OutcomePolicy, tmp_path: Path, store: str
) -> None:
    approvals = SqliteApprovalStore(tmp_path / "approvals.sqlite") if store == "sqlite" else None
    shared: list[Approval] = []
    lock = threading.Lock()
    gate = threading.Barrier(100)

    def same_answer(request: ConfirmationRequest) -> Approval:
        with lock:
            if not shared:
                shared.append(Approval(request.approval_id, request.binding, True, "alice"))
        gate.wait()
        return shared[0]

    guard = Guard(shop_policy, confirmer=CallbackConfirmer(same_answer), approvals=approvals)
    ran: list[int] = []
    call_id = "call-the-same-one"

    def worker() -> None:
        guard.execute(
            ToolCall("buy_item", dict(DESK), call_id),
            lambda a: ran.append(1),
            on_deny=lambda d: None,
            principal=BUYER,
        )

    threads = [threading.Thread(target=worker) for _ in range(100)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(ran) == 1


def test_single_use_holds_across_processes_sharing_a_store(
    shop_policy: OutcomePolicy, tmp_path: Path
) -> None:
    path = tmp_path / "approvals.sqlite"
    kept: list[Approval] = []

    def keep(request: ConfirmationRequest) -> Approval:
        kept.append(Approval(request.approval_id, request.binding, True, "alice"))
        return kept[0]

    first = Guard(
        shop_policy, confirmer=CallbackConfirmer(keep), approvals=SqliteApprovalStore(path)
    )
    call = ToolCall("buy_item", dict(DESK), "call-7")
    assert first.execute(call, lambda a: "bought", principal=BUYER) == "bought"
    second = Guard(
        shop_policy,
        confirmer=CallbackConfirmer(lambda r: kept[0]),
        approvals=SqliteApprovalStore(path),
    )  # another process, same store
    with pytest.raises(ToolCallDenied, match="already used"):
        second.execute(call, lambda a: "bought again", principal=BUYER)


def test_a_thousand_forged_replayed_expired_mutated_and_cross_call_approvals(
    shop_policy: OutcomePolicy, tmp_path: Path
) -> None:
    rng = random.Random(11)
    store = SqliteApprovalStore(tmp_path / "approvals.sqlite", ttl_s=300)
    used: list[Approval] = []
    accepted = 0

    def keep_first(request: ConfirmationRequest) -> Approval:
        answer = Approval(request.approval_id, request.binding, True, "alice")
        used.append(answer)
        return answer

    Guard(shop_policy, confirmer=CallbackConfirmer(keep_first), approvals=store).execute(
        ToolCall("buy_item", dict(DESK), "call-0"), lambda a: None, principal=BUYER
    )
    for i in range(1000):
        kind = i % 5

        def attack(request: ConfirmationRequest, kind: int = kind) -> Approval:
            if kind == 0:  # forged binding
                return Approval(
                    request.approval_id, "sha256:" + f"{rng.getrandbits(256):064x}", True, "mallory"
                )
            if kind == 1:  # replay of an approval already used
                return used[0]
            if kind == 2:  # mutated: right id, binding of another call
                return Approval(request.approval_id, used[0].binding, True, "mallory")
            if kind == 3:  # cross-call: an id that belongs to another request
                return Approval(used[0].approval_id, request.binding, True, "mallory")
            time.sleep(0.002)  # expired
            return Approval(request.approval_id, request.binding, True, "alice")

        ttl = 0.001 if kind == 4 else 300
        guard = Guard(
            shop_policy,
            confirmer=CallbackConfirmer(attack),
            approvals=SqliteApprovalStore(tmp_path / "approvals.sqlite", ttl_s=ttl),
        )
        args = {**DESK, "amount": 600.0 + i}
        result = guard.execute(
            ToolCall("buy_item", args, f"call-{i + 1}"),
            lambda a: "ran",
            on_deny=lambda d: d,
            principal=BUYER,
        )
        accepted += result == "ran"
    assert accepted == 0
