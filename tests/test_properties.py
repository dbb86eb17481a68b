"""Properties of the decision function, checked with Hypothesis."""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from guardrail import Effect, Guard, Principal, ToolCall, parse_policy

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
arguments = st.dictionaries(st.text(max_size=12), json_values, max_size=6)
names = st.one_of(
    st.sampled_from(["buy_item", "refund", "deploy", "read_logs"]), st.text(max_size=20)
)

CONDITIONS = [
    "args.amount > 100.0",
    "args.amount <= 500.0",
    "'buyer' in principal.roles",
    "boundary.external",
    "has(args.item)",
    "size(args.item) > 3",
    "intent == 'purchase'",
    "task.environment == 'prod'",
    "true",
    "args.amount > 0 && args.amount < 10",
]
rules = st.lists(
    st.tuples(
        st.sampled_from(CONDITIONS),
        st.sampled_from(["allow", "deny", "confirm"]),
        st.sampled_from(["purchase", "*", "deploy"]),
    ),
    min_size=0,
    max_size=8,
)
calls = st.fixed_dictionaries(
    {
        "amount": st.one_of(
            st.floats(allow_nan=False, allow_infinity=False, min_value=-1e6, max_value=1e6),
            st.integers(-10, 10**6),
            st.text(max_size=5),
        ),
        "item": st.text(max_size=10),
        "vendor_url": st.sampled_from(["https://acme.example/x", "https://evil.example", "n/a"]),
    }
)
PRINCIPALS = [Principal(id="a", roles=("buyer",)), Principal(id="b")]


def policy_text(rule_list: list[tuple[str, str, str]]) -> str:
    lines = [
        "apiVersion: guardrail/v1",
        "kind: OutcomePolicy",
        "metadata: {name: p}",
        "tools: {buy_item: {intent: purchase}, deploy: {intent: deploy}}",
        "rules:",
    ]
    if not rule_list:
        lines[-1] = "rules: []"
    for i, (when, effect, intent) in enumerate(rule_list):
        lines.append(f"  - {{id: r{i}, intent: '{intent}', when: \"{when}\", effect: {effect}}}")
    return "\n".join(lines) + "\n"


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(name=names, args=arguments, rule_list=rules)
def test_decide_is_total(name: str, args: dict[str, object], rule_list: list) -> None:
    guard = Guard(parse_policy(policy_text(rule_list)))
    decision = guard.decide(ToolCall(name, args), principal=PRINCIPALS[0])
    assert decision.effect in (Effect.ALLOW, Effect.DENY, Effect.CONFIRM)
    assert decision.rule_ids and decision.reason


@settings(max_examples=300)
@given(
    rule_list=rules,
    extra=st.tuples(st.sampled_from(CONDITIONS), st.sampled_from(["purchase", "*"])),
    args=calls,
    who=st.sampled_from(PRINCIPALS),
)
def test_adding_a_deny_rule_never_turns_deny_into_allow(
    rule_list: list, extra: tuple[str, str], args: dict[str, object], who: Principal
) -> None:
    call = ToolCall("buy_item", args)
    before = Guard(parse_policy(policy_text(rule_list))).decide(call, principal=who)
    more = [*rule_list, (extra[0], "deny", extra[1])]
    after = Guard(parse_policy(policy_text(more))).decide(call, principal=who)
    if before.effect is Effect.DENY:
        assert after.effect is Effect.DENY
    if after.effect is Effect.ALLOW:
        assert before.effect is Effect.ALLOW


@settings(max_examples=300)
@given(rule_list=rules, args=calls, who=st.sampled_from(PRINCIPALS), seed=st.integers(0, 2**16))
def test_rule_order_does_not_change_the_decision(
    rule_list: list, args: dict[str, object], who: Principal, seed: int
) -> None:
    call = ToolCall("buy_item", args, id="fixed")
    indexed = list(enumerate(rule_list))
    shuffled = indexed[:]
    random.Random(seed).shuffle(shuffled)

    def text(pairs: list) -> str:
        lines = policy_text([r for _, r in pairs]).splitlines()
        # keep each rule's id stable while its position moves
        head = [line for line in lines if not line.startswith("  - ")]
        body = [
            f"  - {{id: r{i}, intent: '{r[2]}', when: \"{r[0]}\", effect: {r[1]}}}"
            for i, r in pairs
        ]
        return "\n".join(head + body) + "\n"

    first = Guard(parse_policy(text(indexed))).decide(call, principal=who)
    second = Guard(parse_policy(text(shuffled))).decide(call, principal=who)
    assert (first.effect, first.rule_ids) == (second.effect, second.rule_ids)
