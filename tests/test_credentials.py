"""Just-in-time credentials: minted only for calls that run, scoped, verified, single use."""

from __future__ import annotations

import random
import time
from typing import Any

import jwt
import pytest

from guardrail import (
    CallbackConfirmer,
    Credential,
    CredentialError,
    CredentialIssuer,
    Effect,
    Guard,
    Principal,
    ReplayCache,
    Task,
    ToolCall,
    ToolCallDenied,
    current_credential,
    verify_credential,
)
from tests.conftest import attrs, policy

DEPLOY = """
apiVersion: guardrail/v1
kind: OutcomePolicy
metadata: {name: deploy}
max_credential_ttl: 600
tools:
  deploy: {intent: deploy, resource: service, environment_arg: environment}
rules:
  - id: staging
    intent: deploy
    when: boundary.environment == 'staging' && boundary.environment == task.environment
    effect: allow
    credential: {audience: deploy-api, ttl: 3600}
  - id: prod
    intent: deploy
    when: boundary.environment == 'prod' && boundary.environment == task.environment
    effect: confirm
    credential: {audience: deploy-api, ttl: 300}
"""
BOT = Principal(
    id="agent:release", roles=("deployer",), delegation=(Principal(id="human:alice", kind="human"),)
)


@pytest.fixture
def issuer() -> CredentialIssuer:
    return CredentialIssuer(max_ttl_s=900)


def deploy_tool(guard: Guard, seen: list[Any]):
    @guard.tool(intent="deploy")
    def deploy(service: str, environment: str, credential: Credential | None = None) -> str:
        seen.append(credential)
        assert credential is current_credential()
        return f"deployed {service}"

    return deploy


def test_an_allowed_call_gets_a_scoped_short_lived_token(issuer: CredentialIssuer) -> None:
    guard = Guard(policy(DEPLOY), credentials=issuer)
    seen: list[Any] = []
    with guard.task("release", principal=BOT, environment="staging"):
        assert deploy_tool(guard, seen)("payments", "staging") == "deployed payments"
    credential = seen[0]
    assert "eyJ" not in repr(credential) and credential.token.startswith("eyJ")
    claims = verify_credential(
        credential.token,
        key=issuer.public_key_pem,
        audience="deploy-api",
        tool="deploy",
        resource="service",
        environment="staging",
        args={"service": "payments", "environment": "staging"},
    )
    assert claims["sub"] == "agent:release" and claims["exp"] - claims["iat"] == 600  # capped
    assert claims["guardrail"]["act"] == ["human:alice"]
    with pytest.raises(CredentialError, match="environment"):
        verify_credential(
            credential.token, key=issuer.public_key_pem, audience="deploy-api", environment="prod"
        )
    with pytest.raises(CredentialError, match="other arguments"):
        verify_credential(
            credential.token,
            key=issuer.public_key_pem,
            audience="deploy-api",
            args={"service": "billing", "environment": "staging"},
        )
    with pytest.raises(CredentialError, match="audience"):
        verify_credential(credential.token, key=issuer.public_key_pem, audience="billing-api")


def test_no_credential_for_denied_or_pending_calls(issuer: CredentialIssuer) -> None:
    minted: list[Any] = []
    original = issuer.mint

    def counting(*args: Any) -> Any:
        minted.append(args)
        return original(*args)

    issuer.mint = counting  # type: ignore[method-assign,assignment]
    guard = Guard(policy(DEPLOY), credentials=issuer, confirmer=CallbackConfirmer(lambda r: False))
    seen: list[Any] = []
    deploy = deploy_tool(guard, seen)
    with guard.task("release", principal=BOT, environment="staging"):
        with pytest.raises(ToolCallDenied):
            deploy("payments", "prod")  # outside the task: denied
    with guard.task("release", principal=BOT, environment="prod"):
        with pytest.raises(ToolCallDenied):
            deploy("payments", "prod")  # confirm, then rejected
    assert minted == [] and seen == []


def test_an_approved_call_gets_its_credential(issuer: CredentialIssuer) -> None:
    guard = Guard(policy(DEPLOY), credentials=issuer, confirmer=CallbackConfirmer(lambda r: True))
    seen: list[Any] = []
    with guard.task("release", principal=BOT, environment="prod"):
        deploy_tool(guard, seen)("payments", "prod")
    claims = verify_credential(
        seen[0].token, key=issuer.public_key_pem, audience="deploy-api", environment="prod"
    )
    assert claims["exp"] - claims["iat"] == 300


def test_without_an_issuer_the_call_is_denied() -> None:
    guard = Guard(policy(DEPLOY))
    with guard.task("release", principal=BOT, environment="staging"):
        with pytest.raises(ToolCallDenied, match="no credential issuer"):
            deploy_tool(guard, [])("payments", "staging")


def test_a_caller_cannot_hand_in_a_credential(issuer: CredentialIssuer) -> None:
    guard = Guard(policy(DEPLOY), credentials=issuer)
    with guard.task("release", principal=BOT, environment="staging"), pytest.raises(TypeError):
        deploy_tool(guard, [])("payments", "staging", credential="forged")


def test_credentials_never_reach_evidence(
    issuer: CredentialIssuer, exporter: Any, provider: Any
) -> None:
    guard = Guard(policy(DEPLOY), credentials=issuer, tracer_provider=provider)
    seen: list[Any] = []
    with guard.task("release", principal=BOT, environment="staging"):
        deploy_tool(guard, seen)("payments", "staging")
    span = next(s for s in exporter.get_finished_spans() if s.name == "execute_tool deploy")
    dump = repr(span.to_json())
    assert seen[0].token not in dump
    assert attrs(span)["guardrail.credential.id"] == seen[0].id
    assert any(e.name == "guardrail.credential.issued" for e in span.events)


def test_single_use_tokens_are_accepted_once(issuer: CredentialIssuer) -> None:
    guard = Guard(policy(DEPLOY), credentials=issuer)
    seen: list[Any] = []
    with guard.task("release", principal=BOT, environment="staging"):
        deploy_tool(guard, seen)("payments", "staging")
    cache = ReplayCache()
    verify_credential(seen[0].token, key=issuer.public_key_pem, audience="deploy-api", replay=cache)
    with pytest.raises(CredentialError, match="already used"):
        verify_credential(
            seen[0].token, key=issuer.public_key_pem, audience="deploy-api", replay=cache
        )


def test_a_thousand_forged_expired_and_mutated_tokens_are_refused(issuer: CredentialIssuer) -> None:
    guard = Guard(policy(DEPLOY), credentials=issuer)
    seen: list[Any] = []
    with guard.task("release", principal=BOT, environment="staging"):
        deploy_tool(guard, seen)("payments", "staging")
    good = seen[0]
    other = CredentialIssuer()
    rng = random.Random(7)
    accepted = 0
    for i in range(1000):
        kind = i % 5
        claims = dict(good.claims)
        if kind == 0:  # signed by another key
            token = jwt.encode(claims, other._key, algorithm="EdDSA")
        elif kind == 1:  # expired
            claims.update(
                iat=int(time.time()) - 7200,
                nbf=int(time.time()) - 7200,
                exp=int(time.time()) - 3600,
            )
            token = jwt.encode(claims, issuer._key, algorithm="EdDSA")
        elif kind == 2:  # a byte of the token flipped
            chars = list(good.token)
            j = rng.randrange(len(chars) - 10, len(chars))
            chars[j] = "A" if chars[j] != "A" else "B"
            token = "".join(chars)
        elif kind == 3:  # alg=none
            token = jwt.encode(claims, None, algorithm="none")  # type: ignore[arg-type]
        else:  # replayed single-use token
            token = good.token
        try:
            cache = ReplayCache()
            if kind == 4:
                cache.use(good.id, good.expires_at)
            verify_credential(token, key=issuer.public_key_pem, audience="deploy-api", replay=cache)
            accepted += 1
        except CredentialError:
            pass
    assert accepted == 0


def test_decide_reports_the_obligation_without_minting(issuer: CredentialIssuer) -> None:
    guard = Guard(policy(DEPLOY), credentials=issuer)
    d = guard.decide(
        ToolCall("deploy", {"service": "p", "environment": "staging"}),
        principal=BOT,
        task=Task(environment="staging"),
    )
    assert d.effect is Effect.ALLOW and d.credential is not None
    assert d.credential.audience == "deploy-api" and d.credential_id is None
