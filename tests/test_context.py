"""Live context: providers fetched concurrently, cached, and failing closed."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
import respx

from guardrail import Effect, Guard, Principal, Task, ToolCall
from tests.conftest import policy

API = """
apiVersion: guardrail/v1
kind: OutcomePolicy
metadata: {name: api}
tools:
  issue: {intent: issue_credential, resource: api}
context:
  posture:
    url: "https://posture.test/identities/{principal.id}"
    field: data
    timeout: 0.5
    ttl: 60
    headers: {Authorization: "Bearer ${POSTURE_TOKEN}"}
  ticket:
    url: "https://tickets.test/tickets/{task.ticket}"
    timeout: 0.5
rules:
  - id: posture
    intent: issue_credential
    when: "!context.posture.compliant"
    effect: deny
    reason: "posture: {context.posture.finding}"
  - id: ticket
    intent: issue_credential
    when: "context.ticket.status != 'approved' || !(args.api in context.ticket.apis)"
    effect: deny
    reason: "ticket {task.ticket} does not grant {args.api}"
  - id: issue
    intent: issue_credential
    effect: allow
"""
SVC = Principal(id="svc:reports", kind="service")
TASK = Task(goal="report", ticket="ACC-7")


@pytest.fixture(autouse=True)
def token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POSTURE_TOKEN", "s3cret")


def decide(guard: Guard, api: str = "billing") -> Any:
    return guard.decide(ToolCall("issue", {"api": api}), principal=SVC, task=TASK)


def mock_services(posture: Any = None, ticket: Any = None) -> tuple[Any, Any]:
    p = respx.get("https://posture.test/identities/svc%3Areports").mock(
        return_value=posture
        or httpx.Response(200, json={"data": {"compliant": True, "finding": "none"}})
    )
    t = respx.get("https://tickets.test/tickets/ACC-7").mock(
        return_value=ticket or httpx.Response(200, json={"status": "approved", "apis": ["billing"]})
    )
    return p, t


@respx.mock
def test_facts_are_fetched_and_decide() -> None:
    posture, ticket = mock_services()
    guard = Guard(policy(API))
    d = decide(guard)
    assert d.effect is Effect.ALLOW, d.reason
    assert posture.calls[0].request.headers["Authorization"] == "Bearer s3cret"
    assert d.facts is not None and d.facts.context == {"posture": "ok", "ticket": "ok"}
    assert decide(guard, "payroll").reason == "ticket ACC-7 does not grant payroll"


@respx.mock
def test_each_failure_has_its_own_reason() -> None:
    mock_services(
        posture=httpx.Response(
            200, json={"data": {"compliant": False, "finding": "disk not encrypted"}}
        )
    )
    assert decide(Guard(policy(API))).reason == "posture: disk not encrypted"


@respx.mock
@pytest.mark.parametrize(
    "failure",
    [
        httpx.Response(503),
        httpx.Response(200, text="not json"),
        httpx.Response(200, json={}),
        httpx.ConnectError("refused"),
        httpx.ReadTimeout("slow"),
    ],
)
def test_a_failing_provider_denies_with_its_reason(failure: Any) -> None:
    if isinstance(failure, Exception):
        mock_services(ticket=None)
        respx.get("https://posture.test/identities/svc%3Areports").mock(side_effect=failure)
    else:
        mock_services(posture=failure)
    d = decide(Guard(policy(API)))
    assert d.effect is Effect.DENY and "context 'posture' is unavailable" in d.reason


@respx.mock
def test_providers_run_concurrently_and_time_out() -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        time.sleep(0.3)
        return httpx.Response(200, json={"data": {"compliant": True, "finding": "none"}})

    def slow_ticket(request: httpx.Request) -> httpx.Response:
        time.sleep(0.3)
        return httpx.Response(200, json={"status": "approved", "apis": ["billing"]})

    respx.get("https://posture.test/identities/svc%3Areports").mock(side_effect=slow)
    respx.get("https://tickets.test/tickets/ACC-7").mock(side_effect=slow_ticket)
    started = time.perf_counter()
    assert decide(Guard(policy(API))).effect is Effect.ALLOW
    assert time.perf_counter() - started < 0.55  # two 0.3 s services, asked at once

    def hang(request: httpx.Request) -> httpx.Response:
        time.sleep(2)
        return httpx.Response(200, json={})

    respx.get("https://posture.test/identities/svc%3Areports").mock(side_effect=hang)
    started = time.perf_counter()
    d = decide(Guard(policy(API)))
    assert d.effect is Effect.DENY and "no answer within 0.5s" in d.reason
    assert time.perf_counter() - started < 1.5


@respx.mock
def test_answers_are_cached_for_their_ttl() -> None:
    posture, ticket = mock_services()
    guard = Guard(policy(API))
    for _ in range(3):
        assert decide(guard).effect is Effect.ALLOW
    assert posture.call_count == 1 and ticket.call_count == 3  # ttl 60 vs no ttl
    assert decide(guard).facts.context["posture"] == "cached"


@respx.mock
def test_the_tasks_own_context_wins_and_nothing_is_fetched() -> None:
    posture, ticket = mock_services()
    task = Task(
        ticket="ACC-7",
        context={
            "posture": {"compliant": True, "finding": "none"},
            "ticket": {"status": "approved", "apis": ["billing"]},
        },
    )
    d = Guard(policy(API)).decide(ToolCall("issue", {"api": "billing"}), principal=SVC, task=task)
    assert d.effect is Effect.ALLOW and posture.call_count == ticket.call_count == 0


def test_python_callables_and_skip_on_error() -> None:
    text = API.replace(
        """  - id: issue
    intent: issue_credential
    effect: allow""",
        """  - id: issue
    intent: issue_credential
    effect: allow
  - id: vendor-watch
    intent: issue_credential
    when: context.watchlist.flagged
    effect: deny
    context_errors: skip""",
    )

    def broken(facts: Any) -> Any:
        raise RuntimeError("watchlist down")

    guard = Guard(
        policy(text),
        providers={
            "posture": lambda facts: {
                "compliant": facts["principal"]["kind"] == "service",
                "finding": "none",
            },
            "ticket": lambda facts: {"status": "approved", "apis": ["billing"]},
            "watchlist": broken,
        },
    )
    d = decide(guard)
    assert d.effect is Effect.ALLOW and d.facts.context["watchlist"].startswith("error")


@respx.mock
def test_unset_environment_variables_fail_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("POSTURE_TOKEN")
    mock_services()
    d = decide(Guard(policy(API)))
    assert d.effect is Effect.DENY and "POSTURE_TOKEN is not set" in d.reason
