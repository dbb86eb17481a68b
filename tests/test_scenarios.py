"""The five scenarios of the mission, end to end through decorated functions."""

from __future__ import annotations

from pathlib import Path

import pytest
from guardrail.policies import policy_path
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from guardrail import Effect, Guard, load_policy
from guardrail._cli._demo import auto_confirmer, play
from guardrail._cli._scenarios import APPROVED, EPISODES, REJECTED
from guardrail.spool import Spool


@pytest.fixture
def rows(provider: TracerProvider, tmp_path: Path):  # type: ignore[no-untyped-def]
    guard = Guard(
        load_policy(policy_path()),
        confirmer=auto_confirmer(),
        tracer_provider=provider,
        spool=Spool(tmp_path / "spool.sqlite"),
    )
    return play(guard)


def test_durable_rules_need_the_spool(provider: TracerProvider) -> None:
    guard = Guard(load_policy(policy_path()), confirmer=auto_confirmer(), tracer_provider=provider)
    stopped = [r for r in play(guard) if "guardrail:evidence-unavailable" in r.decision.rule_ids]
    assert stopped
    assert all(r.decision.effect is Effect.DENY and not isinstance(r.result, str) for r in stopped)


@pytest.mark.parametrize(
    "scenario",
    ["1 deploy", "2 api access", "3 rotate secret", "4 purchase", "4 record", "5 integration"],
)
def test_every_call_gets_the_expected_outcome(rows, scenario: str) -> None:  # type: ignore[no-untyped-def]
    mine = [r for r in rows if r.scenario == scenario]
    assert mine
    for row in mine:
        assert row.outcome == row.expect, (row.call, row.decision.rule_ids, row.decision.reason)


def test_tool_bodies_run_exactly_for_allowed_calls(rows) -> None:  # type: ignore[no-untyped-def]
    for row in rows:
        ran = isinstance(row.result, str)
        assert ran is (row.decision.effect is Effect.ALLOW), row.call


def test_each_kind_of_outcome_appears(rows) -> None:  # type: ignore[no-untyped-def]
    outcomes = {r.outcome for r in rows}
    assert {"allow", "deny", APPROVED, REJECTED} <= outcomes
    assert len(rows) == sum(len(e.steps) for e in EPISODES)


def test_every_call_leaves_one_red_or_plain_span(rows, exporter: InMemorySpanExporter) -> None:  # type: ignore[no-untyped-def]
    tool_spans = [s for s in exporter.get_finished_spans() if s.name.startswith("execute_tool ")]
    assert len(tool_spans) == len(rows)
    by_id = {s.attributes["guardrail.decision.id"]: s for s in tool_spans}
    for row in rows:
        span = by_id[row.decision.decision_id]
        assert span.attributes["guardrail.decision"] == row.decision.effect.value
        assert (span.attributes.get("error.type") == "guardrail.denied") is (
            row.decision.effect is not Effect.ALLOW
        )
