"""The policy file format, validated by pydantic. See README "Policy language"."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

_ID = r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$"
_NAME = r"^[A-Za-z_][A-Za-z0-9_.-]*$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MetadataSpec(_Strict):
    name: str = Field(pattern=_NAME)
    version: str | int = 1
    description: str = ""


class LoggingSpec(_Strict):
    level: Literal["none", "metadata", "full"] = "metadata"
    redact: tuple[str, ...] = ()
    durable: bool = False

    @field_validator("redact")
    @classmethod
    def _paths_under_args(cls, paths: tuple[str, ...]) -> tuple[str, ...]:
        for path in paths:
            if not path.startswith("args.") or len(path) == len("args."):
                raise ValueError(
                    f"redact path '{path}' must name an argument, like args.card_number"
                )
        return paths


class ToolSpecModel(_Strict):
    intent: str = Field(pattern=_NAME)
    resource: str | None = None
    description: str | None = None
    reads: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()
    destinations: tuple[str, ...] = ()
    environment_arg: str | None = None
    tenant_arg: str | None = None


class CredentialSpec(_Strict):
    audience: str = Field(min_length=1)
    ttl: int = Field(default=300, gt=0)
    single_use: bool = True


class ProviderSpec(_Strict):
    url: str | None = None
    method: Literal["GET", "POST"] = "GET"
    headers: dict[str, str] = Field(default_factory=dict)
    field: str | None = None
    timeout: float = Field(default=2.0, gt=0, le=60)
    ttl: float = Field(default=0.0, ge=0)


class RuleSpec(_Strict):
    id: str = Field(pattern=_ID)
    description: str = ""
    intent: str | tuple[str, ...] = "*"
    resource: str | tuple[str, ...] | None = None
    tool: str | tuple[str, ...] | None = None
    when: str = "true"
    effect: Literal["allow", "deny", "confirm"]
    reason: str | None = None
    instruction: str | None = None
    logging: LoggingSpec | None = None
    controls: tuple[str, ...] = ()
    credential: CredentialSpec | None = None
    context_errors: Literal["deny", "skip"] = "deny"


class ExampleSpec(_Strict):
    name: str
    tool: str
    args: dict[str, Any] = Field(default_factory=dict)
    principal: dict[str, Any] | None = None
    task: dict[str, Any] | None = None
    expect: Literal["allow", "deny", "confirm"]
    rule: str | None = None


class PolicyDocument(_Strict):
    api_version: Literal["guardrail/v1"] = Field(alias="apiVersion")
    kind: Literal["OutcomePolicy"]
    metadata: MetadataSpec
    default: Literal["deny", "confirm"] = "deny"
    max_credential_ttl: int = Field(default=900, gt=0)
    internal_domains: tuple[str, ...] = ()
    intents: tuple[str, ...] = ()
    logging: LoggingSpec = LoggingSpec()
    tools: dict[str, ToolSpecModel] = Field(default_factory=dict)
    context: dict[str, ProviderSpec] = Field(default_factory=dict)
    rules: tuple[RuleSpec, ...] = ()
    examples: tuple[ExampleSpec, ...] = ()

    model_config = ConfigDict(extra="forbid", frozen=True)


FIELD_FIXES: dict[str, str] = {
    "default": "use 'deny' or 'confirm'; the guard never allows by default, write allow rules",
    "effect": "use one of allow, deny, confirm",
    "apiVersion": "write apiVersion: guardrail/v1",
    "kind": "write kind: OutcomePolicy",
}
