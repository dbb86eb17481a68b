"""Just-in-time credentials: a short-lived signed token for one allowed call.

On allow, and only then, a rule's ``credential:`` obligation has the guard mint a JWT (EdDSA
over Ed25519 by default) scoped to the tool, resource, audience, environment and the digest of
the exact arguments decided. The tool gets it as its ``credential`` parameter or from
`current_credential()`; the resource side checks it with `verify_credential`. The token never
reaches evidence: spans and records carry its id only.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from guardrail._canonical import ArgumentRefused, canonical_args, digest
from guardrail._errors import GuardrailError
from guardrail._model import CredentialGrant, Decision, Principal, Task

DEFAULT_ISSUER = "outcome-guardrail"
__all__ = [
    "Credential",
    "CredentialError",
    "CredentialGrant",
    "CredentialIssuer",
    "ReplayCache",
    "current_credential",
    "verify_credential",
]
_CLAIM = "guardrail"


class CredentialError(GuardrailError):
    """A credential failed verification; the message says which check."""


@dataclass(frozen=True, slots=True)
class Credential:
    """A minted token and what it is for. ``repr`` never shows the token."""

    id: str
    audience: str
    expires_at: float
    token: str = field(repr=False)
    claims: Mapping[str, Any] = field(repr=False, default_factory=dict)

    def __str__(self) -> str:
        return f"Credential({self.id}, audience={self.audience})"


class CredentialIssuer:
    """Mints credentials for allowed calls.

    Args:
        private_key: an Ed25519 private key (PEM bytes or key object); a fresh one by default.
        issuer: the ``iss`` claim.
        max_ttl_s: the longest lifetime any policy may ask for.
    """

    def __init__(
        self,
        *,
        private_key: bytes | Ed25519PrivateKey | None = None,
        issuer: str = DEFAULT_ISSUER,
        max_ttl_s: int = 900,
    ) -> None:
        if isinstance(private_key, bytes):
            loaded = serialization.load_pem_private_key(private_key, password=None)
            if not isinstance(loaded, Ed25519PrivateKey):
                raise CredentialError("the credential key must be an Ed25519 private key")
            private_key = loaded
        self._key = private_key or Ed25519PrivateKey.generate()
        self.issuer = issuer
        self.max_ttl_s = max_ttl_s

    @property
    def public_key_pem(self) -> bytes:
        """The key resource servers verify with."""
        return self._key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def mint(
        self, decision: Decision, principal: Principal, task: Task, grant: CredentialGrant
    ) -> Credential:
        """A token for exactly this decided call."""
        now = int(time.time())
        ttl = max(1, min(grant.ttl_s, self.max_ttl_s))
        facts = decision.facts
        jti = f"cred-{uuid.uuid4().hex}"
        scope = {
            "tool": decision.tool,
            "resource": facts.resource if facts else None,
            "environment": facts.boundary.environment if facts else None,
            "tenant": facts.boundary.tenant if facts else None,
            "args": decision.args_digest,
            "decision": decision.decision_id,
            "policy": decision.policy_digest,
            "task": task.id,
            "act": [p.id for p in principal.delegation],
            "single_use": grant.single_use,
        }
        claims = {
            "iss": self.issuer,
            "sub": principal.id,
            "aud": grant.audience,
            "iat": now,
            "nbf": now,
            "exp": now + ttl,
            "jti": jti,
            _CLAIM: scope,
        }
        token = jwt.encode(claims, self._key, algorithm="EdDSA")
        return Credential(jti, grant.audience, float(now + ttl), token, claims)


class ReplayCache:
    """Remembers used token ids until they expire, so a single-use token works once."""

    def __init__(self) -> None:
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()

    def use(self, jti: str, expires_at: float) -> bool:
        """Mark ``jti`` used; False if it already was."""
        now = time.time()
        with self._lock:
            if len(self._seen) > 10_000:
                self._seen = {k: v for k, v in self._seen.items() if v > now}
            if jti in self._seen:
                return False
            self._seen[jti] = expires_at
            return True


def verify_credential(
    token: str,
    *,
    key: bytes,
    audience: str,
    issuer: str = DEFAULT_ISSUER,
    tool: str | None = None,
    resource: str | None = None,
    environment: str | None = None,
    args: Mapping[str, object] | None = None,
    replay: ReplayCache | None = None,
) -> dict[str, Any]:
    """Check a credential on the resource side; return its claims.

    Checks the signature (EdDSA only), expiry, issuer and audience, and that the request in
    hand matches the scope: the tool, resource and environment if given, and the digest of
    ``args`` if given. With ``replay``, a single-use token is accepted once.

    Raises:
        CredentialError: naming the check that failed.
    """
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=["EdDSA"],
            audience=audience,
            issuer=issuer,
            options={"require": ["exp", "iat", "nbf", "jti", "aud", "iss", "sub"]},
        )
    except jwt.ExpiredSignatureError:
        raise CredentialError("the credential expired") from None
    except jwt.InvalidAudienceError:
        raise CredentialError(f"the credential is not for audience {audience!r}") from None
    except jwt.InvalidTokenError as err:
        raise CredentialError(f"the credential is invalid ({type(err).__name__})") from None
    scope = claims.get(_CLAIM)
    if not isinstance(scope, dict):
        raise CredentialError("the credential carries no scope")
    for name, wanted in (("tool", tool), ("resource", resource), ("environment", environment)):
        if wanted is not None and scope.get(name) != wanted:
            raise CredentialError(
                f"the credential is scoped to {name} {scope.get(name)!r}, not {wanted!r}"
            )
    if args is not None:
        try:
            asked = digest(canonical_args(args))
        except ArgumentRefused as err:
            raise CredentialError(f"the request's arguments cannot be checked ({err})") from None
        if scope.get("args") != asked:
            raise CredentialError("the credential was issued for other arguments")
    if (
        replay is not None
        and scope.get("single_use")
        and not replay.use(claims["jti"], float(claims["exp"]))
    ):
        raise CredentialError("the single-use credential was already used")
    return claims


_current: ContextVar[Credential | None] = ContextVar("guardrail_credential", default=None)


def current_credential() -> Credential | None:
    """The credential minted for the call now running, if its rule asked for one."""
    return _current.get()


def _set_current(credential: Credential | None) -> Any:
    return _current.set(credential)


def _reset_current(token: Any) -> None:
    _current.reset(token)
