"""Tasks live in context variables: threads and asyncio tasks each see their own."""

from __future__ import annotations

import asyncio
import threading

from guardrail import Effect, Guard, Principal, ToolCall, current_task
from tests.conftest import policy

POLICY = """
apiVersion: guardrail/v1
kind: OutcomePolicy
metadata: {name: t}
tools: {read_report: {intent: read}}
rules:
  - {id: auditors-read, intent: read, when: "'auditor' in principal.roles", effect: allow}
"""
AUDITOR = Principal(id="human:ann", kind="human", roles=("auditor",))
STRANGER = Principal(id="agent:stranger")


def decide(guard: Guard) -> Effect:
    return guard.decide(ToolCall("read_report", {})).effect


def test_tasks_nest_and_restore() -> None:
    guard = Guard(policy(POLICY))
    assert current_task() is None and decide(guard) is Effect.DENY
    with guard.task("audit", principal=AUDITOR) as outer:
        assert current_task() == outer.task and decide(guard) is Effect.ALLOW
        with guard.task("sub-step"):  # inherits the principal
            assert decide(guard) is Effect.ALLOW
        with guard.task("handover", principal=STRANGER):
            assert decide(guard) is Effect.DENY
        assert current_task() == outer.task
    assert current_task() is None


def test_a_task_in_one_thread_is_not_seen_in_another() -> None:
    guard = Guard(policy(POLICY))
    entered, checked = threading.Event(), threading.Event()
    seen: dict[str, Effect] = {}

    def auditor() -> None:
        with guard.task("audit", principal=AUDITOR):
            entered.set()
            checked.wait(5)
            seen["auditor"] = decide(guard)

    def other() -> None:
        entered.wait(5)
        seen["other"] = decide(guard)
        checked.set()

    threads = [threading.Thread(target=auditor), threading.Thread(target=other)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == {"auditor": Effect.ALLOW, "other": Effect.DENY}


def test_concurrent_asyncio_tasks_keep_their_own_principal() -> None:
    guard = Guard(policy(POLICY))

    async def act(principal: Principal) -> list[Effect]:
        async with guard.task("work", principal=principal):
            results = []
            for _ in range(20):
                await asyncio.sleep(0)
                results.append(decide(guard))
            return results

    async def main() -> tuple[list[Effect], list[Effect]]:
        return tuple(await asyncio.gather(act(AUDITOR), act(STRANGER)))  # type: ignore[return-value]

    allowed, denied = asyncio.run(main())
    assert set(allowed) == {Effect.ALLOW} and set(denied) == {Effect.DENY}
