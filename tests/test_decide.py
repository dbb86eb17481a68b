"""guard.decide: precedence, default deny, names, argument values, tasks, fail-closed."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from guardrail import Decision, Effect, Guard, Principal, Task, ToolCall
from tests.conftest import policy

BUYER = Principal(id="agent:buyer", roles=("buyer",))
SHOP = "https://acme.example/shop"

BOUND_ONLY = """
apiVersion: guardrail/v1
kind: OutcomePolicy
metadata: {name: bound}
tools:
  pay: {intent: purchase}
rules:
  - id: within-bound
    intent: purchase
    when: args.amount <= 500.0
    effect: allow
"""


def buy(guard: Guard, amount: object, vendor: str = SHOP, **extra: object) -> Decision:
    args = {"item": "chair", "amount": amount, "vendor_url": vendor, **extra}
    return guard.decide(ToolCall("buy_item", args), principal=BUYER)


def test_allow_confirm_deny_and_precedence(shop_guard: Guard) -> None:
    allowed = buy(shop_guard, 120.0)
    assert allowed.effect is Effect.ALLOW and allowed.rule_ids == ("small-purchases",)
    assert allowed.reason == "chair for 120.0 is within budget"
    assert buy(shop_guard, 900.0).effect is Effect.CONFIRM
    # deny beats confirm: an unapproved supplier for a large amount
    denied = buy(shop_guard, 900.0, "https://evil.example/")
    assert denied.effect is Effect.DENY and denied.rule_ids == ("approved-suppliers-only",)
    assert denied.reason == "supplier evil.example is not approved"
    assert "Do not retry" in denied.instruction


def test_decision_carries_policy_identity(shop_guard: Guard) -> None:
    d = buy(shop_guard, 120.0)
    assert (d.policy_name, d.policy_version) == ("shop", "7")
    assert d.policy_digest == shop_guard.policy.digest
    assert d.args_digest.startswith("sha256:") and len(d.decision_id) == 32


def test_no_matching_rule_is_the_default_deny(shop_guard: Guard) -> None:
    d = shop_guard.decide(
        ToolCall("buy_item", {"item": "x", "amount": 1.0, "vendor_url": SHOP}),
        principal=Principal(id="agent:intern"),
    )
    assert d.effect is Effect.DENY and d.rule_ids == ("guardrail:default-deny",)


def test_unknown_tool_is_unknown_intent_and_denied(shop_guard: Guard) -> None:
    d = shop_guard.decide(ToolCall("drop_tables", {}), principal=BUYER)
    assert d.effect is Effect.DENY and d.facts is not None and d.facts.intent == "unknown"
    assert "no known intent" in d.reason


@pytest.mark.parametrize(
    "name",
    [
        "buy_іtem",  # Cyrillic i
        "Buy_item",  # case variant
        "buy_item ",  # trailing space
        "buy\u200bitem",  # zero-width space
        "buy_item\u202e",  # bidi override
        "",
        "x" * 500,
    ],
)
def test_names_that_only_look_like_a_tool_are_not_that_tool(shop_guard: Guard, name: str) -> None:
    d = (
        buy(shop_guard, 120.0)
        if False
        else shop_guard.decide(
            ToolCall(name, {"item": "c", "amount": 1.0, "vendor_url": SHOP}), principal=BUYER
        )
    )
    assert d.effect is Effect.DENY
    assert d.facts is None or d.facts.intent == "unknown"


def test_fullwidth_name_is_the_same_tool_after_nfkc(shop_guard: Guard) -> None:
    d = shop_guard.decide(
        ToolCall("ｂｕｙ_ｉｔｅｍ", {"item": "c", "amount": 1.0, "vendor_url": SHOP}),
        principal=BUYER,
    )
    assert d.effect is Effect.ALLOW and d.tool == "buy_item"


@pytest.mark.parametrize(
    "amount",
    [
        "1e9",
        "400",
        "１００",
        float("nan"),
        float("inf"),
        -float("inf"),
        10**400,
        2**70,
        True,
        False,
        None,
        [1.0],
        {"value": 1.0},
    ],
)
def test_values_never_satisfy_a_numeric_bound(amount: object) -> None:
    guard = Guard(policy(BOUND_ONLY))
    d = guard.decide(ToolCall("pay", {"amount": amount}))
    assert d.effect is Effect.DENY, (amount, d)


def test_real_numbers_do_satisfy_the_bound() -> None:
    guard = Guard(policy(BOUND_ONLY))
    assert guard.decide(ToolCall("pay", {"amount": 500})).effect is Effect.ALLOW
    assert guard.decide(ToolCall("pay", {"amount": 499.99})).effect is Effect.ALLOW
    assert guard.decide(ToolCall("pay", {"amount": 500.01})).effect is Effect.DENY


def test_refused_arguments_say_which_argument(shop_guard: Guard) -> None:
    d = buy(shop_guard, math.nan)
    assert d.rule_ids == ("guardrail:arguments",) and "args.amount" in d.reason
    deep: object = "x"
    for _ in range(40):
        deep = [deep]
    assert "nested deeper" in buy(shop_guard, 1.0, note=deep).reason
    assert "tag or bidi" in buy(shop_guard, 1.0, note="hi\U000e0041").reason
    assert "cannot be judged" in buy(shop_guard, 1.0, note=object()).reason
    assert buy(shop_guard, 1.0, note="x" * 1_000_001).effect is Effect.DENY


def test_a_rule_that_cannot_be_evaluated_denies(shop_guard: Guard) -> None:
    d = shop_guard.decide(ToolCall("buy_item", {"item": "c", "vendor_url": SHOP}), principal=BUYER)
    assert d.effect is Effect.DENY
    assert "could not be evaluated" in d.reason and "'amount'" in d.reason


def test_decide_never_raises_on_nonsense() -> None:
    guard = Guard(policy(BOUND_ONLY))
    nonsense: list[tuple[Any, Any]] = [
        (None, {}),
        ("pay", None),
        ("pay", [1, 2]),
        (123, {"amount": 1}),
        ("pay", {1: 2}),
    ]
    for tool, args in nonsense:
        call = ToolCall(tool, args)
        assert guard.decide(call).effect is Effect.DENY
    assert guard.decide(ToolCall("pay", {}), principal="root").effect is Effect.DENY  # type: ignore[arg-type]


TASKS = """
apiVersion: guardrail/v1
kind: OutcomePolicy
metadata: {name: tasks}
tools:
  deploy: {intent: deploy, environment_arg: env}
  read_logs: {intent: read}
rules:
  - id: deploy-in-task-env
    intent: deploy
    when: >
      boundary.environment == task.environment &&
      principal.delegation.exists(p, p.kind == 'human') && context.window == 'open'
    effect: allow
  - id: reads
    intent: read
    effect: allow
"""


def test_task_principal_delegation_and_context_reach_conditions() -> None:
    guard = Guard(policy(TASKS))
    human = Principal(id="human:alice", kind="human")
    bot = Principal(id="agent:bot", delegation=(human,))
    with guard.task("release", principal=bot, environment="staging", context={"window": "open"}):
        assert guard.decide(ToolCall("deploy", {"env": "staging"})).effect is Effect.ALLOW
        assert guard.decide(ToolCall("deploy", {"env": "prod"})).effect is Effect.DENY
    alone = Principal(id="agent:bot")
    with guard.task("release", principal=alone, environment="staging", context={"window": "open"}):
        assert guard.decide(ToolCall("deploy", {"env": "staging"})).effect is Effect.DENY


def test_intents_outside_the_task_are_denied() -> None:
    guard = Guard(policy(TASKS))
    with guard.task("look at logs", intents=["read"]):
        assert guard.decide(ToolCall("read_logs", {})).effect is Effect.ALLOW
        d = guard.decide(ToolCall("deploy", {"env": "staging"}))
        assert d.rule_ids == ("guardrail:task-scope",) and "outside task" in d.reason


def test_expired_tasks_deny() -> None:
    guard = Guard(policy(TASKS))
    past = Task(goal="old", expires_at=datetime.now(timezone.utc) - timedelta(seconds=1))
    assert guard.decide(ToolCall("read_logs", {}), task=past).rule_ids == (
        "guardrail:task-expired",
    )
    with guard.task("soon over", expires_in=3600):
        assert guard.decide(ToolCall("read_logs", {})).effect is Effect.ALLOW


def test_reason_templates_never_show_secrets() -> None:
    guard = Guard(
        policy("""
        apiVersion: guardrail/v1
        kind: OutcomePolicy
        metadata: {name: r}
        tools: {post: {intent: send_message}}
        rules:
          - id: refuse
            intent: send_message
            effect: deny
            reason: "refused {args.body} / {args.card} / {args}"
            logging: {redact: [args.card]}
        """)
    )
    token = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
    d = guard.decide(ToolCall("post", {"body": f"token {token}", "card": "4111111111111111"}))
    assert token not in d.reason and "4111" not in d.reason and "4111" not in d.instruction
    assert d.reason.count("[redacted]") == 3


def test_the_time_budget_denies() -> None:
    guard = Guard(policy(TASKS), decision_budget_s=-1.0)
    d = guard.decide(ToolCall("read_logs", {}))
    assert d.effect is Effect.DENY and "time budget" in d.reason


def test_a_call_outside_any_task_says_so(shop_guard: Guard) -> None:
    d = shop_guard.decide(ToolCall("buy_item", {"item": "x", "amount": 1.0, "vendor_url": SHOP}))
    assert d.effect is Effect.DENY and "outside any guard.task" in d.reason
