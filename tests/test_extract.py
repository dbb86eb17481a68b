"""Extraction: scanners over argument values, destinations, declared data classes."""

from __future__ import annotations

import pytest

from guardrail import Guard, ToolCall
from guardrail._scan import iban_valid, is_internal, luhn_valid, secret_kind
from tests.conftest import policy

POLICY = """
apiVersion: guardrail/v1
kind: OutcomePolicy
metadata: {name: x}
internal_domains: [corp.example]
tools:
  send: {intent: send_message, destinations: [recipient], writes: [pii]}
  deploy: {intent: deploy, environment_arg: target, tenant_arg: customer}
"""


def facts(tool: str, **args: object):
    d = Guard(policy(POLICY)).decide(ToolCall(tool, args))
    assert d.facts is not None, d.reason
    return d.facts


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("AKIAIOSFODNN7EXAMPLE", "aws-access-key"),
        ("ghp_" + "x" * 36, "github-token"),
        ("xoxb-1234567890-abcdefghij", "slack-token"),
        ("sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc", "stripe-key"),
        (
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
            "jwt",
        ),
        ("-----BEGIN RSA PRIVATE KEY-----\nMIIE...", "private-key"),
        ("Authorization: Bearer abcdefghijklmnop1234", "bearer-token"),
        ("password=hunter22!", "password-assignment"),
        ("postgres://admin:s3cr3t@db.corp.example/prod", "url-credentials"),
        ("kJ8fQ2zXp9LmN4vR7tY1wB6cD3eH5gA0", "high-entropy-string"),
    ],
)
def test_secret_formats(text: str, kind: str) -> None:
    assert secret_kind("note", text) == kind


@pytest.mark.parametrize(
    "text",
    [
        "hello world",
        "a3f5c9e1b2d4f6a8c0e2b4d6f8a0c2e4b6d8f0a2",  # commit id: lowercase hex
        "/var/lib/postgresql/data/base",
        "The-Quick-Brown-Fox-Jumps-Over",
    ],
)
def test_ordinary_text_is_not_a_secret(text: str) -> None:
    assert secret_kind("note", text) is None


def test_secret_named_arguments_but_not_references() -> None:
    assert secret_kind("api_key", "abc123") == "secret-named-argument"
    assert secret_kind("db_password", "correct horse") == "secret-named-argument"
    assert secret_kind("secret_id", "vault:svc/db") is None
    assert secret_kind("token_ttl", "3600") is None


def test_luhn_and_iban_checks() -> None:
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")
    assert iban_valid("GB82WEST12345698765432") and not iban_valid("GB82WEST12345698765433")


def test_data_classes_found_and_declared() -> None:
    f = facts(
        "send",
        recipient="bob@partner.example",
        body="card 4111 1111 1111 1111",
        iban="IBAN DE89 3704 0044 0532 0130 00",
    )
    assert f.boundary.data_classes == ("financial", "pii")
    invalid = facts("send", recipient="x", body="4111 1111 1111 1112")
    assert invalid.boundary.data_classes == ("pii",)  # declared writes only


def test_secrets_are_found_nested_and_marked_for_redaction() -> None:
    f = facts("send", recipient="ops@corp.example", body={"lines": ["ok", "AKIAIOSFODNN7EXAMPLE"]})
    assert "secret" in f.boundary.data_classes
    assert f.logging.redact == ("args.body.lines[1]",)


def test_destinations_are_classified_internal_or_external() -> None:
    f = facts(
        "send",
        recipient="alice@corp.example",
        body="see https://wiki.corp.example/page and https://acme.example@evil.example/x",
    )
    assert f.boundary.destination_hosts == ("corp.example", "evil.example", "wiki.corp.example")
    assert f.boundary.external_hosts == ("evil.example",)


@pytest.mark.parametrize(
    ("host", "internal"),
    [
        ("corp.example", True),
        ("a.b.corp.example", True),
        ("evilcorp.example", False),
        ("corp.example.evil.example", False),
        ("localhost", True),
        ("10.1.2.3", True),
        ("127.0.0.1", True),
        ("169.254.169.254", False),
        ("8.8.8.8", False),
    ],
)
def test_internal_hosts(host: str, internal: bool) -> None:
    assert is_internal(host, ("corp.example",)) is internal


def test_environment_and_tenant_come_from_declared_arguments() -> None:
    f = facts("deploy", target="prod", customer="acme")
    assert (f.boundary.environment, f.boundary.tenant) == ("prod", "acme")
    assert (f.intent, f.intent_source) == ("deploy", "policy")
