"""The five scenarios of the mission, end to end through decorated functions, with respx
standing in for the third-party services the policies ask."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import respx
from guardrail.policies import policy_path
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from guardrail import (
    Credential,
    CredentialError,
    CredentialIssuer,
    Effect,
    Guard,
    load_policy,
    verify_credential,
)
from guardrail._cli._demo import auto_confirmer, cross_environment_check, play
from guardrail._cli._scenarios import APPROVED, EPISODES, REJECTED, SERVICES, simulated_services
from guardrail.audit import records_from_spool, verify
from guardrail.spool import Spool
from tests.conftest import attrs


@pytest.fixture
def services() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as router:
        for host in SERVICES:
            router.route(host=host).mock(side_effect=simulated_services)
        yield router


@pytest.fixture
def issuer() -> CredentialIssuer:
    return CredentialIssuer()


@pytest.fixture
def played(
    services: respx.MockRouter, provider: TracerProvider, tmp_path: Path, issuer: CredentialIssuer
) -> tuple[list[Any], list[Credential], Path]:
    spool_path = tmp_path / "spool.sqlite"
    guard = Guard(
        load_policy(policy_path()),
        confirmer=auto_confirmer(),
        tracer_provider=provider,
        spool=Spool(spool_path),
        credentials=issuer,
    )
    minted: list[Credential] = []
    return play(guard, issuer, minted=minted), minted, spool_path


SCENARIOS = [
    "1 deploy",
    "2 api access",
    "3 rotate secret",
    "4 purchase",
    "4 record",
    "5 integration",
]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_call_gets_the_expected_outcome(played: Any, scenario: str) -> None:
    rows = [r for r in played[0] if r.scenario == scenario]
    assert rows
    for row in rows:
        assert row.outcome == row.expect, (row.call, row.decision.rule_ids, row.decision.reason)


def test_tool_bodies_run_exactly_for_allowed_calls(played: Any) -> None:
    for row in played[0]:
        assert isinstance(row.result, str) is (row.decision.effect is Effect.ALLOW), row.call


def test_each_kind_of_outcome_appears(played: Any) -> None:
    outcomes = {r.outcome for r in played[0]}
    assert {"allow", "deny", APPROVED, REJECTED} <= outcomes
    assert len(played[0]) == sum(len(e.steps) for e in EPISODES)


def test_the_services_were_asked(played: Any, services: respx.MockRouter) -> None:
    hosts = {call.request.url.host for call in services.calls}
    assert hosts == set(SERVICES)


def test_deploy_tokens_are_ten_minutes_and_bound_to_their_environment(
    played: Any, issuer: CredentialIssuer
) -> None:
    rows, minted, _ = played
    deploys = [c for c in minted if c.audience == "deploy-api"]
    staging = next(c for c in deploys if c.claims["guardrail"]["environment"] == "staging")
    assert staging.claims["exp"] - staging.claims["iat"] == 600
    verify_credential(
        staging.token,
        key=issuer.public_key_pem,
        audience="deploy-api",
        environment="staging",
        tool="deploy_release",
    )
    with pytest.raises(CredentialError, match="environment"):
        verify_credential(
            staging.token, key=issuer.public_key_pem, audience="deploy-api", environment="prod"
        )
    assert cross_environment_check(issuer, staging).startswith("refused")
    denied = [r for r in rows if r.decision.effect is not Effect.ALLOW]
    assert all(r.decision.credential_id is None for r in denied)
    assert {c.id for c in minted} <= {r.decision.credential_id for r in rows}


def test_each_api_access_failure_has_its_own_reason(played: Any) -> None:
    reasons = [
        r.decision.reason
        for r in played[0]
        if r.scenario == "2 api access" and r.decision.effect is Effect.DENY
    ]
    assert any("not compliant (disk encryption off)" in r for r in reasons)
    assert any("grants billing, not payroll" in r for r in reasons)


def test_rotation_without_telemetry_says_so(played: Any) -> None:
    legacy = next(r for r in played[0] if "legacy" in r.call)
    assert legacy.decision.rule_ids[0] == "rotation-needs-telemetry"
    assert "unavailable" in legacy.decision.reason and "HTTP 503" in legacy.decision.errors[0]


def test_the_evidence_of_every_scenario_verifies(played: Any) -> None:
    report = verify(records_from_spool(played[2]))
    assert report.ok and report.records > len(played[0])


def test_every_call_leaves_one_span(played: Any, exporter: InMemorySpanExporter) -> None:
    rows = played[0]
    tool_spans = [s for s in exporter.get_finished_spans() if s.name.startswith("execute_tool ")]
    assert len(tool_spans) == len(rows)
    by_id = {attrs(s)["guardrail.decision.id"]: s for s in tool_spans}
    for row in rows:
        span = by_id[row.decision.decision_id]
        assert attrs(span)["guardrail.decision"] == row.decision.effect.value
        assert (attrs(span).get("error.type") == "guardrail.denied") is (
            row.decision.effect is not Effect.ALLOW
        )


def test_durable_rules_need_the_spool(services: respx.MockRouter, provider: TracerProvider) -> None:
    guard = Guard(
        load_policy(policy_path()),
        confirmer=auto_confirmer(),
        tracer_provider=provider,
        credentials=CredentialIssuer(),
    )
    stopped = [r for r in play(guard) if "guardrail:evidence-unavailable" in r.decision.rule_ids]
    assert stopped
    assert all(r.decision.effect is Effect.DENY and not isinstance(r.result, str) for r in stopped)


def test_services_down_means_denied(provider: TracerProvider, tmp_path: Path) -> None:
    with respx.mock(assert_all_called=False) as router:
        router.route().respond(503)
        guard = Guard(
            load_policy(policy_path()),
            confirmer=auto_confirmer(),
            tracer_provider=provider,
            spool=Spool(tmp_path / "s.sqlite"),
            credentials=CredentialIssuer(),
        )
        rows = play(guard)
    needs_services = [
        r for r in rows if r.scenario in ("2 api access", "3 rotate secret", "5 integration")
    ]
    assert needs_services
    assert all(r.decision.effect is Effect.DENY for r in needs_services)
