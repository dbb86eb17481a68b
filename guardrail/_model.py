"""The values that flow through the pipeline: who acts, for which task, which call, the verdict."""

from __future__ import annotations

import enum
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Effect(str, enum.Enum):
    """What the policy says about a call. Precedence: deny > confirm > allow."""

    ALLOW = "allow"
    DENY = "deny"
    CONFIRM = "confirm"

    def __str__(self) -> str:
        return self.value


class Principal(BaseModel):
    """Who acts: an agent, a service account or a human, and on whose behalf.

    ``delegation`` is the chain of principals the actor works for, nearest first
    (an agent acting for a pipeline acting for a human: ``[pipeline, human]``).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1)
    kind: Literal["agent", "service", "human"] = "agent"
    roles: tuple[str, ...] = ()
    attributes: Mapping[str, Any] = Field(default_factory=dict)
    delegation: tuple[Principal, ...] = ()

    def to_facts(self) -> dict[str, Any]:
        """The principal as the policy sees it under ``principal``."""
        return {
            "id": self.id,
            "kind": self.kind,
            "roles": list(self.roles),
            "attributes": dict(self.attributes),
            "delegation": [p.to_facts() for p in self.delegation],
            "chain": [self.id, *(p.id for p in self.delegation)],
        }


ANONYMOUS = Principal(id="anonymous", kind="agent")


class Task(BaseModel):
    """The business outcome an agent was given; every call inside it is judged against it.

    An empty ``intents`` puts no limit on intents; a non-empty one denies any call whose
    intent is not listed. ``context`` holds live facts the policy reads as ``context.*``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    goal: str = ""
    id: str = Field(default_factory=lambda: f"task-{uuid.uuid4().hex[:12]}")
    intents: tuple[str, ...] = ()
    environment: str | None = None
    tenant: str | None = None
    ticket: str | None = None
    budget: float | None = None
    expires_at: datetime | None = None
    attributes: Mapping[str, Any] = Field(default_factory=dict)
    context: Mapping[str, Any] = Field(default_factory=dict)

    def expired(self, now: datetime | None = None) -> bool:
        """Whether the task's time is up."""
        if self.expires_at is None:
            return False
        expires = self.expires_at
        if expires.tzinfo is None:
            expires = expires.replace(tzinfo=timezone.utc)
        return (now or datetime.now(timezone.utc)) >= expires

    def to_facts(self) -> dict[str, Any]:
        """The task as the policy sees it under ``task``."""
        return {
            "id": self.id,
            "goal": self.goal,
            "intents": list(self.intents),
            "environment": self.environment,
            "tenant": self.tenant,
            "ticket": self.ticket,
            "budget": self.budget,
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "attributes": dict(self.attributes),
        }


NO_TASK = Task(goal="", id="no-task")


def _call_id() -> str:
    return f"call-{os.urandom(8).hex()}"


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One call an agent wants to make: the tool's name, its arguments and a call id."""

    tool: str
    args: Mapping[str, object] = field(default_factory=dict)
    id: str = field(default_factory=_call_id)


@dataclass(frozen=True, slots=True)
class Boundary:
    """The data boundary of a call: which data classes it touches and where data goes."""

    data_classes: tuple[str, ...] = ()
    destination_hosts: tuple[str, ...] = ()
    external_hosts: tuple[str, ...] = ()
    environment: str | None = None
    tenant: str | None = None

    @property
    def external(self) -> bool:
        """Whether any destination lies outside the policy's internal domains."""
        return bool(self.external_hosts)

    def to_facts(self) -> dict[str, Any]:
        """The boundary as the policy sees it under ``boundary``."""
        return {
            "data_classes": list(self.data_classes),
            "destination_hosts": list(self.destination_hosts),
            "external_hosts": list(self.external_hosts),
            "external": self.external,
            "environment": self.environment,
            "tenant": self.tenant,
        }


LogLevel = Literal["none", "metadata", "full"]
_LEVEL_RANK = {"none": 0, "metadata": 1, "full": 2}


@dataclass(frozen=True, slots=True)
class LoggingRequirement:
    """What the evidence of a call must and must not carry.

    ``level``: ``none`` records the decision only, ``metadata`` adds argument names and
    digest, ``full`` adds the redacted arguments. ``redact`` lists argument paths
    (``args.card_number``) replaced by a keyed hash. ``durable`` asks for evidence that
    survives a crash before the tool runs.
    """

    level: LogLevel = "metadata"
    redact: tuple[str, ...] = ()
    durable: bool = False

    def merge(self, other: LoggingRequirement) -> LoggingRequirement:
        """The stricter union: more detail where asked, every redaction, durable if either is."""
        level = self.level if _LEVEL_RANK[self.level] >= _LEVEL_RANK[other.level] else other.level
        redact = tuple(sorted(set(self.redact) | set(other.redact)))
        return LoggingRequirement(level, redact, self.durable or other.durable)


@dataclass(frozen=True, slots=True)
class Finding:
    """Something a scanner found in the arguments, e.g. a secret at ``args.token``."""

    path: str
    data_class: str
    detail: str


@dataclass(frozen=True, slots=True)
class Facts:
    """What a call is for: intent and resource, data boundary, logging requirements."""

    tool: str
    intent: str
    resource: str | None
    boundary: Boundary
    logging: LoggingRequirement
    findings: tuple[Finding, ...] = ()
    description: str | None = None
    intent_source: Literal["policy", "tool", "unknown"] = "unknown"
    context: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CredentialGrant:
    """A rule's obligation: on allow, mint a token for ``audience`` living ``ttl_s`` seconds."""

    audience: str
    ttl_s: int = 300
    single_use: bool = True


@dataclass(frozen=True, slots=True)
class Decision:
    """The verdict on one call, as a value.

    ``reason`` is the diagnosis for people; ``instruction`` is what the agent is told.
    ``rule_ids`` lists the rules that decided (built-in checks start with ``guardrail:``).
    """

    effect: Effect
    tool: str
    call_id: str
    rule_ids: tuple[str, ...]
    reason: str
    instruction: str
    policy_name: str
    policy_version: str
    policy_digest: str
    args_digest: str
    decision_id: str
    facts: Facts | None = None
    controls: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()
    approval_id: str | None = None
    approver: str | None = None
    credential: CredentialGrant | None = None
    credential_id: str | None = None

    @property
    def allowed(self) -> bool:
        """Whether the call may run now."""
        return self.effect is Effect.ALLOW

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (no argument values)."""
        facts = self.facts
        return {
            "effect": self.effect.value,
            "tool": self.tool,
            "call_id": self.call_id,
            "decision_id": self.decision_id,
            "rule_ids": list(self.rule_ids),
            "reason": self.reason,
            "instruction": self.instruction,
            "policy": {
                "name": self.policy_name,
                "version": self.policy_version,
                "digest": self.policy_digest,
            },
            "args_digest": self.args_digest,
            "intent": facts.intent if facts else None,
            "resource": facts.resource if facts else None,
            "boundary": facts.boundary.to_facts() if facts else None,
            "logging": (
                {
                    "level": facts.logging.level,
                    "redact": list(facts.logging.redact),
                    "durable": facts.logging.durable,
                }
                if facts
                else None
            ),
            "context": dict(facts.context) if facts else {},
            "controls": list(self.controls),
            "errors": list(self.errors),
            "approval_id": self.approval_id,
            "approver": self.approver,
            "credential": (
                {"audience": self.credential.audience, "ttl_s": self.credential.ttl_s}
                if self.credential
                else None
            ),
            "credential_id": self.credential_id,
        }
