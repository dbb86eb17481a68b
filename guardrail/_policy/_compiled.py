"""The compiled, immutable policy: rules indexed by intent, ready to evaluate."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from guardrail._model import CredentialGrant, Effect, LoggingRequirement
from guardrail._policy._expr import Condition
from guardrail._policy._reason import ReasonTemplate

_RANK = {Effect.DENY: 0, Effect.CONFIRM: 1, Effect.ALLOW: 2}


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """What a tool is for: its intent and resource, the data it reads and writes, where it sends.

    ``destinations`` names arguments whose values are destinations (recipients, hosts);
    URLs anywhere in the arguments count as destinations too. ``environment_arg`` and
    ``tenant_arg`` name the arguments that carry the target environment and tenant.
    """

    name: str
    intent: str
    resource: str | None = None
    description: str | None = None
    reads: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()
    destinations: tuple[str, ...] = ()
    environment_arg: str | None = None
    tenant_arg: str | None = None


@dataclass(frozen=True, slots=True)
class Provider:
    """A live fact the policy reads as ``context.<name>``.

    With ``url`` it is fetched over HTTP (JSON; the policy's ``field``, ``pick`` here, picks
    a dotted path out of the answer); without, the application supplies it in code
    (``Guard(providers={name: fn})``).
    """

    name: str
    url: ReasonTemplate | None = None
    method: str = "GET"
    headers: Mapping[str, str] = field(default_factory=dict)
    pick: str | None = None
    timeout_s: float = 2.0
    ttl_s: float = 0.0


@dataclass(frozen=True, slots=True)
class Rule:
    """One compiled rule. ``intents``/``resources``/``tools`` of ``None`` match anything."""

    id: str
    effect: Effect
    condition: Condition
    intents: frozenset[str] | None
    resources: frozenset[str] | None
    tools: frozenset[str] | None
    reason: ReasonTemplate | None
    instruction: ReasonTemplate | None
    logging: LoggingRequirement | None
    controls: tuple[str, ...]
    source: str
    credential: CredentialGrant | None = None
    context_names: frozenset[str] = frozenset()
    skip_on_context_error: bool = False

    def selects(self, tool: str, resource: str | None) -> bool:
        """Whether the rule's selectors (besides intent) cover this call."""
        if self.tools is not None and tool not in self.tools:
            return False
        return self.resources is None or resource in self.resources


@dataclass(frozen=True, slots=True)
class Example:
    """An example call carried by a policy file, with the decision it must get."""

    name: str
    tool: str
    args: Mapping[str, Any]
    principal: Any
    task: Any
    expect: Effect
    rule: str | None
    source: str


@dataclass(frozen=True, slots=True)
class _Bucket:
    rules: tuple[Rule, ...]
    roots: frozenset[str]
    context_names: frozenset[str] = frozenset()


@dataclass(frozen=True)
class OutcomePolicy:
    """A compiled outcome policy; build it with `load_policy`. Immutable and thread-safe."""

    name: str
    version: str
    digest: str
    default: Effect
    rules: tuple[Rule, ...]
    tools: Mapping[str, ToolSpec]
    internal_domains: tuple[str, ...]
    logging: LoggingRequirement
    examples: tuple[Example, ...] = ()
    sources: tuple[str, ...] = ()
    providers: Mapping[str, Provider] = field(default_factory=dict)
    _index: Mapping[str, _Bucket] = field(init=False, repr=False, compare=False)
    _wildcard: _Bucket = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        intents = {i for r in self.rules if r.intents for i in r.intents}
        wildcard = [r for r in self.rules if r.intents is None]
        index = {
            i: _bucket([r for r in self.rules if r.intents and i in r.intents] + wildcard)
            for i in intents
        }
        object.__setattr__(self, "_index", MappingProxyType(index))
        object.__setattr__(self, "_wildcard", _bucket(wildcard))

    def context_needed(self, intent: str) -> frozenset[str]:
        """The ``context.*`` facts the rules for ``intent`` read."""
        return self._index.get(intent, self._wildcard).context_names

    def candidates(self, intent: str) -> tuple[tuple[Rule, ...], frozenset[str]]:
        """Rules that may apply to ``intent`` (deny first, then confirm, then allow, by id),
        and the condition roots they read."""
        bucket = self._index.get(intent, self._wildcard)
        return bucket.rules, bucket.roots

    def rule(self, rule_id: str) -> Rule | None:
        """The rule with this id, if any."""
        return next((r for r in self.rules if r.id == rule_id), None)


def _bucket(rules: list[Rule]) -> _Bucket:
    ordered = tuple(sorted(rules, key=lambda r: (_RANK[r.effect], r.id)))
    roots = frozenset(root for r in ordered for root in r.condition.roots)
    return _Bucket(ordered, roots, frozenset(n for r in ordered for n in r.context_names))
