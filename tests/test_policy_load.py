"""Loading policies: valid files compile; broken ones are refused with every problem at once."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from guardrail import Effect, PolicyError, load_policy, parse_policy
from tests.conftest import PURCHASE_POLICY, policy

HEAD = "apiVersion: guardrail/v1\nkind: OutcomePolicy\nmetadata: {name: t}\n"


def refused(text: str) -> PolicyError:
    with pytest.raises(PolicyError) as info:
        parse_policy(text, source="p.yaml")
    return info.value


def test_valid_policy_compiles_with_digest_and_version() -> None:
    p = policy(PURCHASE_POLICY)
    assert p.name == "shop" and p.version == "7"
    assert p.digest.startswith("sha256:") and len(p.digest) == 71
    assert p.default is Effect.DENY
    assert [r.id for r in p.candidates("purchase")[0]] == [
        "approved-suppliers-only",
        "large-purchases",
        "small-purchases",
    ]
    assert p.candidates("deploy")[0] == ()


def test_every_problem_is_reported_at_once_with_line_rule_and_fix() -> None:
    err = refused(
        HEAD
        + textwrap.dedent("""\
        rules:
          - id: a
            intent: purchase
            when: arg.amount > 1.0
            effect: allow
          - id: b
            intent: purchse
            when: "true"
            effect: allow
          - id: c
            intent: purchase
            wehn: "true"
            effect: allow
          - id: d
            intent: purchase
            when: "args.amount <= "
            effect: allow
          - id: e
            intent: purchase
            when: lower(args.x) == 'a'
            effect: maybe
        """)
    )
    text = str(err)
    by_rule = {p.rule_id: p for p in err.problems}
    assert by_rule["a"].line == 7 and "unknown name 'arg'" in by_rule["a"].message
    assert "did you mean 'args'" in by_rule["a"].fix
    assert by_rule["b"].line == 10 and "did you mean 'purchase'" in by_rule["b"].fix
    assert by_rule["c"].line == 15 and "did you mean 'when'" in by_rule["c"].fix
    assert by_rule["d"].line == 19 and "column" in by_rule["d"].message and "^" in text
    e_problems = [p for p in err.problems if p.rule_id == "e"]
    assert {p.line for p in e_problems} == {23, 24}  # unknown function and bad effect
    assert "p.yaml:7: rule 'a':" in text
    assert len(err.problems) == 6
    assert [p.line for p in err.problems] == sorted(p.line or 0 for p in err.problems)


def test_unknown_function_gets_a_suggestion() -> None:
    err = refused(
        HEAD + 'rules:\n  - {id: a, intent: read, when: "sizee(args.x) > 1", effect: allow}\n'
    )
    assert "unknown function 'sizee'" in err.problems[0].message
    assert "did you mean 'size'" in err.problems[0].fix


def test_default_allow_is_refused() -> None:
    err = refused(HEAD + "default: allow\n")
    assert err.problems[0].line == 4
    assert "write allow rules" in err.problems[0].fix


def test_duplicate_yaml_keys_are_refused() -> None:
    err = refused(HEAD + "rules:\n  - id: a\n    effect: allow\n    effect: deny\n")
    assert err.problems[0].line == 7 and "duplicate key 'effect'" in err.problems[0].message


def test_syntax_errors_carry_the_line() -> None:
    err = refused(HEAD + "rules: [\n")
    assert err.problems[0].line is not None and "not valid YAML" in err.problems[0].message


def test_reason_placeholders_are_checked_at_load() -> None:
    err = refused(
        HEAD
        + textwrap.dedent("""\
        rules:
          - {id: a, intent: read, effect: deny, reason: "host {host} refused"}
          - {id: b, intent: read, effect: deny, reason: "{args.__class__}"}
          - {id: c, intent: read, effect: deny, reason: "{args.x!r}"}
        """)
    )
    assert [p.rule_id for p in err.problems] == ["a", "b", "c"]
    assert "unknown name 'host'" in err.problems[0].message


def test_redact_paths_must_name_arguments() -> None:
    err = refused(
        HEAD + "rules:\n  - {id: a, intent: read, effect: allow, "
        "logging: {redact: [card_number]}}\n"
    )
    assert "args.card_number" in err.problems[0].message


def test_directory_composes_deterministically(tmp_path: Path) -> None:
    (tmp_path / "b.yaml").write_text(
        HEAD.replace("name: t", "name: bee") + "rules:\n  - {id: r2, intent: read, effect: deny}\n"
    )
    (tmp_path / "a.yaml").write_text(
        HEAD.replace("name: t", "name: ay") + "rules:\n  - {id: r1, intent: read, effect: allow}\n"
    )
    (tmp_path / "notes.txt").write_text("ignored")
    composed = load_policy(tmp_path)
    again = load_policy(tmp_path / "b.yaml", tmp_path / "a.yaml")
    assert composed.name == "ay+bee" and composed.digest == again.digest
    assert {r.id for r in composed.rules} == {"r1", "r2"}


def test_duplicate_rule_ids_across_files_are_refused(tmp_path: Path) -> None:
    for name in ("a", "b"):
        (tmp_path / f"{name}.yaml").write_text(
            HEAD + "rules:\n  - {id: same, intent: read, effect: allow}\n"
        )
    with pytest.raises(PolicyError, match="rule id also used at"):
        load_policy(tmp_path)


def test_missing_paths_and_empty_directories_are_problems(tmp_path: Path) -> None:
    with pytest.raises(PolicyError) as info:
        load_policy(tmp_path / "missing.yaml", tmp_path)
    messages = [p.message for p in info.value.problems]
    assert "no such file or directory" in messages
    assert "directory holds no *.yaml policy" in messages


def test_policy_error_is_a_value_error() -> None:
    assert isinstance(refused("[]"), ValueError)


def test_yaml_booleans_where_strings_belong_get_a_quoting_fix() -> None:
    err = refused(HEAD + "rules:\n  - {id: no, intent: read, effect: deny}\n")
    assert err.problems[0].line == 5 and "quote the value" in err.problems[0].fix


def test_policy_tool_names_must_be_plain_ascii() -> None:
    err = refused(HEAD + "tools:\n  buy_\u0456tem: {intent: purchase}\n")
    assert "not a plain ASCII name" in err.problems[0].message
