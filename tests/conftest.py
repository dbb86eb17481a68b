"""Shared fixtures: a local tracer provider with an in-memory exporter, policy builders."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from guardrail import Guard, OutcomePolicy, parse_policy

ROOT = Path(__file__).resolve().parent.parent
# jupyter_core warns about its path migration unless told which layout to use
os.environ.setdefault("JUPYTER_PLATFORM_DIRS", "1")

PURCHASE_POLICY = """
apiVersion: guardrail/v1
kind: OutcomePolicy
metadata: {name: shop, version: 7}
internal_domains: [corp.example]
tools:
  buy_item: {intent: purchase, resource: order}
rules:
  - id: small-purchases
    intent: purchase
    when: args.amount > 0.0 && args.amount <= 500.0 && 'buyer' in principal.roles
    effect: allow
    reason: "{args.item} for {args.amount} is within budget"
  - id: large-purchases
    intent: purchase
    when: args.amount > 500.0
    effect: confirm
    reason: "purchases over 500 need a human"
  - id: approved-suppliers-only
    intent: purchase
    when: "!boundary.destination_hosts.all(h, h in ['acme.example'])"
    effect: deny
    reason: "supplier {boundary.destination_hosts} is not approved"
"""


def policy(text: str, source: str = "test.yaml") -> OutcomePolicy:
    """Compile a policy from an indented YAML string."""
    return parse_policy(textwrap.dedent(text), source=source)


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> Iterator[TracerProvider]:
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(exporter))
    yield tp
    tp.shutdown()


@pytest.fixture
def shop_policy() -> OutcomePolicy:
    return policy(PURCHASE_POLICY)


@pytest.fixture
def shop_guard(shop_policy: OutcomePolicy, provider: TracerProvider) -> Guard:
    return Guard(shop_policy, tracer_provider=provider)


def attrs(span: Any) -> dict[str, Any]:
    """A finished span's attributes as a plain dict (the SDK types them as optional)."""
    return dict(span.attributes or {})
