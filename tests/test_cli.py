"""The guardrail command: exit codes, readable errors, never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from guardrail.policies import policy_path

from guardrail._cli import main

POLICIES = str(policy_path())
BUY = '{"item": "chair", "amount": 120.0, "vendor_url": "https://acme.example/shop"}'
BUYER = '{"id": "agent:buyer", "roles": ["buyer"]}'


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        main(list(argv))
        code = 0
    except SystemExit as done:
        code = int(done.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_check_ok_and_invalid(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = run(capsys, "check", POLICIES)
    assert code == 0 and out.startswith("ok: ") and "25 rules" in out
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: guardrail/v1\nkind: OutcomePolicy\nmetadata: {name: b}\n"
        "rules:\n  - {id: r, intent: purchse, when: 'args.x >', effect: allow}\n"
    )
    code, out, err = run(capsys, "check", str(bad))
    assert code == 2 and "2 problems" in err and f"{bad}:5: rule 'r'" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("args", "principal", "expected"),
    [
        (BUY, BUYER, 0),
        ('{"item": "gpu", "amount": 9000.0, "vendor_url": "https://unknown.example"}', BUYER, 1),
        ('{"item": "desk", "amount": 900.0, "vendor_url": "https://acme.example"}', BUYER, 3),
        ('{"item": "desk", "amount": NaN, "vendor_url": "https://acme.example"}', BUYER, 1),
    ],
)
def test_explain_exit_codes(
    capsys: pytest.CaptureFixture[str], args: str, principal: str, expected: int
) -> None:
    code, out, _ = run(
        capsys,
        "explain",
        "--policy",
        POLICIES,
        "--tool",
        "buy_item",
        "--args",
        args,
        "--principal",
        principal,
    )
    assert code == expected
    assert out.split()[0] == {0: "ALLOW", 1: "DENY", 3: "CONFIRM"}[expected]


def test_explain_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys,
        "explain",
        "--policy",
        POLICIES,
        "--tool",
        "buy_item",
        "--args",
        BUY,
        "--principal",
        BUYER,
        "--format",
        "json",
    )
    data = json.loads(out)
    assert code == 0 and data["effect"] == "allow"
    assert data["rule_ids"] == ["purchases-within-budget"] and data["intent"] == "purchase"
    assert data["policy"]["digest"].startswith("sha256:")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--args", "{bad json"], "--args is not valid JSON"),
        (["--args", '{"a": 1, "a": 2}'], "has the key 'a' twice"),
        (["--args", "[1]"], "must be a JSON object"),
        (["--principal", '{"name": "x"}'], "--principal is not a valid Principal"),
        (["--task", '{"goal": 5}'], "--task is not a valid Task"),
    ],
)
def test_explain_input_errors_are_one_paragraph(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, _, err = run(capsys, "explain", "--policy", POLICIES, "--tool", "buy_item", *argv)
    assert code == 2 and message in err and "Traceback" not in err


def test_test_command_runs_policy_examples(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, _ = run(capsys, "test", POLICIES)
    assert code == 0 and "23 passed, 0 failed" in out
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text(
        policy_path("procurement").read_text().replace("expect: confirm", "expect: allow", 1)
    )
    code, out, _ = run(capsys, "test", str(wrong))
    assert code == 1 and "FAIL" in out and "expected allow, got confirm" in out


def test_unknown_command_and_missing_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "nope")[0] == 2
    code, _, err = run(capsys, "explain", "--tool", "x")
    assert code == 2 and "--policy" in err


def test_demo_runs_end_to_end_as_a_command(tmp_path: Path) -> None:
    trace = tmp_path / "evidence.jsonl"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "guardrail",
            "demo",
            "--trace-file",
            str(trace),
            "--spool",
            str(tmp_path / "spool.sqlite"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "21 calls: 9 ran, 12 stopped; 4 asked a human" in done.stdout
    assert "staging token for prod: refused" in done.stdout
    assert "did not get the expected decision" not in done.stdout
    spans = [
        s
        for line in trace.read_text().splitlines()
        for rs in json.loads(line)["resourceSpans"]
        for ss in rs["scopeSpans"]
        for s in ss["spans"]
    ]
    assert sum(s["name"].startswith("execute_tool ") for s in spans) == 21
