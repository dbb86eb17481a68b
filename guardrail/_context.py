"""Live context: facts a policy needs at decision time, fetched concurrently with timeouts.

A policy names providers under ``context:`` (HTTP JSON), the application adds callables
(``Guard(providers=...)``). Only the facts the rules for a call's intent read are fetched, and
only when the task did not bring them (a task's own ``context`` wins, so tests, examples and
``explain`` can state facts offline). A provider that fails or runs out of time leaves its name
in ``failures``; the rules that read it then deny the call, unless they say ``skip``.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from guardrail._canonical import canonical_json
from guardrail._policy import OutcomePolicy, Provider

ProviderFn = Callable[[Mapping[str, Any]], Any]
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True, slots=True)
class ContextFacts:
    """What the providers answered: values, failures (name -> why), and a summary for evidence."""

    values: Mapping[str, Any] = field(default_factory=dict)
    failures: Mapping[str, str] = field(default_factory=dict)
    summary: Mapping[str, str] = field(default_factory=dict)


class ContextSources:
    """Fetches a policy's live facts; thread-safe, with a TTL cache per provider."""

    def __init__(
        self,
        policy: OutcomePolicy,
        callables: Mapping[str, ProviderFn] | None = None,
        *,
        client: httpx.Client | None = None,
        default_timeout_s: float = 2.0,
    ) -> None:
        self._providers = dict(policy.providers)
        self._callables = dict(callables or {})
        self._client = client
        self._default_timeout_s = default_timeout_s
        self._cache: dict[tuple[str, str], tuple[float, Any]] = {}
        self._lock = threading.Lock()

    @property
    def names(self) -> frozenset[str]:
        """Every fact some provider can supply."""
        return frozenset(self._providers) | frozenset(self._callables)

    def fetch(self, names: frozenset[str], facts: Mapping[str, Any]) -> ContextFacts:
        """Fetch ``names`` concurrently; each within its own timeout."""
        results: dict[str, tuple[str, Any]] = {}
        workers = []
        for name in sorted(names):
            worker = threading.Thread(
                target=self._fetch_one, args=(name, facts, results), daemon=True
            )
            worker.start()
            workers.append((name, worker))
        deadline = {name: time.monotonic() + self._timeout(name) for name in names}
        for name, worker in workers:
            worker.join(max(0.0, deadline[name] - time.monotonic()) + 0.05)
        values, failures, summary = {}, {}, {}
        for name in sorted(names):
            status, value = results.get(
                name, ("error", f"no answer within {self._timeout(name):g}s")
            )
            if status == "error":
                failures[name] = str(value)
                summary[name] = f"error: {value}"[:200]
            else:
                values[name] = value
                summary[name] = status
        return ContextFacts(values, failures, summary)

    def _timeout(self, name: str) -> float:
        provider = self._providers.get(name)
        return provider.timeout_s if provider else self._default_timeout_s

    def _fetch_one(
        self, name: str, facts: Mapping[str, Any], out: dict[str, tuple[str, Any]]
    ) -> None:
        try:
            key = self._key(name, facts)
            cached = self._cached(key)
            if cached is not None:
                out[name] = ("cached", cached[1])
                return
            value = self._call(name, facts)
            ttl = self._providers[name].ttl_s if name in self._providers else 0.0
            if ttl > 0:
                with self._lock:
                    self._cache[key] = (time.monotonic() + ttl, value)
            out[name] = ("ok", value)
        except Exception as err:
            out[name] = ("error", _describe(err))

    def _key(self, name: str, facts: Mapping[str, Any]) -> tuple[str, str]:
        provider = self._providers.get(name)
        if provider is not None and provider.url is not None:
            return name, provider.url.fill(facts, _quoted)
        return name, canonical_json({k: facts.get(k) for k in ("args", "principal", "task")})

    def _cached(self, key: tuple[str, str]) -> tuple[float, Any] | None:
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None and hit[0] > time.monotonic():
                return hit
            self._cache.pop(key, None)
        return None

    def _call(self, name: str, facts: Mapping[str, Any]) -> Any:
        if name in self._callables:
            return self._callables[name](facts)
        provider = self._providers[name]
        if provider.url is None:
            raise LookupError(f"context '{name}' has no URL and no provider was given in code")
        return self._http(provider, facts)

    def _http(self, provider: Provider, facts: Mapping[str, Any]) -> Any:
        assert provider.url is not None
        url = provider.url.fill(facts, _quoted)
        headers = {k: _ENV.sub(_env, v) for k, v in provider.headers.items()}
        client = self._client or _shared_client()
        response = client.request(provider.method, url, headers=headers, timeout=provider.timeout_s)
        response.raise_for_status()
        value: Any = response.json()
        for part in (provider.pick or "").split("."):
            if part:
                value = value[part]
        return value


def _quoted(value: Any) -> str:
    return quote(str(value), safe="")


def _env(match: re.Match[str]) -> str:
    name = match.group(1)
    if name not in os.environ:
        raise LookupError(f"environment variable {name} is not set")
    return os.environ[name]


def _describe(err: Exception) -> str:
    if isinstance(err, httpx.TimeoutException):
        return "timed out"
    if isinstance(err, httpx.HTTPStatusError):
        return f"HTTP {err.response.status_code}"
    if isinstance(err, httpx.HTTPError):
        return f"{type(err).__name__}"
    if isinstance(err, KeyError):
        return f"the answer has no {err.args[0]!r}"
    return f"{type(err).__name__}: {err}"[:200]


_client: httpx.Client | None = None
_client_lock = threading.Lock()


def _shared_client() -> httpx.Client:
    global _client
    with _client_lock:
        if _client is None:
            _client = httpx.Client(follow_redirects=False)
        return _client
