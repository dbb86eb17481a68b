"""Every bundled policy loads on its own and its example calls get the expected decisions."""

from __future__ import annotations

import pytest
from guardrail.policies import NAMES, policy_path

from guardrail import load_policy
from guardrail._examples import run_examples

CASES = [
    (name, r.example.name) for name in NAMES for r in run_examples(load_policy(policy_path(name)))
]


@pytest.mark.parametrize(("name", "example"), CASES)
def test_policy_example(name: str, example: str) -> None:
    results = {r.example.name: r for r in run_examples(load_policy(policy_path(name)))}
    assert results[example].passed, results[example].problem


def test_each_bundled_policy_carries_examples_of_every_effect_it_uses() -> None:
    for name in NAMES:
        p = load_policy(policy_path(name))
        effects = {r.effect for r in p.rules}
        expected = {e.expect for e in p.examples}
        assert effects <= expected, name


def test_the_directory_is_exactly_the_named_policies() -> None:
    files = sorted(p.stem for p in policy_path().glob("*.yaml"))
    assert files == sorted(NAMES)


def test_unknown_bundled_name_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="bundled: api-access"):
        policy_path("nope")
