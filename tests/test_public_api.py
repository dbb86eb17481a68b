"""The public surface stays curated; library code uses the OpenTelemetry API only."""

from __future__ import annotations

import ast
from pathlib import Path

import guardrail
from tests.conftest import ROOT

# the modules that build SDK pipelines and ship evidence, for applications and the CLI
SDK_ALLOWED = {"telemetry.py", "shipping.py"}


def test_all_is_sorted_and_complete() -> None:
    assert guardrail.__all__ == sorted(guardrail.__all__)
    for name in guardrail.__all__:
        assert hasattr(guardrail, name), name
    public = {n for n in vars(guardrail) if not n.startswith("_")} - {
        "adapters",
        "approvals",
        "audit",
        "credentials",
        "policies",
        "shipping",
        "spool",
        "telemetry",
    }
    assert public <= set(guardrail.__all__) | {"annotations"}


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_library_modules_use_the_opentelemetry_api_only() -> None:
    for path in (ROOT / "guardrail").rglob("*.py"):
        if path.name in SDK_ALLOWED or "_cli" in path.parts:
            continue
        sdk = {
            m
            for m in _imports(path)
            if m.startswith(("opentelemetry.sdk", "opentelemetry.exporter"))
        }
        assert not sdk, f"{path} imports {sdk}"


def test_the_core_never_imports_an_adapter_or_a_framework() -> None:
    for path in (ROOT / "guardrail").rglob("*.py"):
        for module in _imports(path):
            assert not module.startswith(("guardrail.adapters", "langchain", "langgraph")), path


def test_adapters_use_public_names_only() -> None:
    for path in (ROOT / "adapters").rglob("*.py"):
        for module in _imports(path):
            assert not module.startswith("guardrail._"), f"{path} imports {module}"
