"""Extraction: from a call to Facts (intent, data boundary, logging requirements).

Declarations come first (the tool's spec, from the policy's ``tools:`` map or the
decorator), inspection second (scanners over the argument values).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from guardrail._model import Boundary, Facts, Finding, LoggingRequirement, Task
from guardrail._policy import OutcomePolicy, ToolSpec
from guardrail._scan import SECRET, hosts_in, is_internal, scan_text

UNKNOWN = "unknown"
_RECIPIENT_KEYS = re.compile(
    r"(?i)^(?:to|cc|bcc|recipients?|email_to|destination|host|"
    r"hostname|domain|endpoint|webhook|callback_url|url)$"
)


def extract(
    tool: str, args: Mapping[str, Any], spec: ToolSpec | None, policy: OutcomePolicy, task: Task
) -> Facts:
    """What the call is for, what data it touches, where data goes and what must be logged."""
    findings: list[Finding] = []
    hosts: set[str] = set()
    destinations = set(spec.destinations) if spec else set()
    for path, top, key, text in _strings(args):
        scan_text(path, key, text, findings)
        as_destination = top in destinations or bool(_RECIPIENT_KEYS.match(key))
        hosts_in(text, hosts, as_destination=as_destination)
    declared = set(spec.reads + spec.writes) if spec else set()
    boundary = Boundary(
        data_classes=tuple(sorted({f.data_class for f in findings} | declared)),
        destination_hosts=tuple(sorted(hosts)),
        external_hosts=tuple(
            sorted(h for h in hosts if not is_internal(h, policy.internal_domains))
        ),
        environment=_pick(args, spec.environment_arg if spec else None, "environment", "env")
        or task.environment,
        tenant=_pick(args, spec.tenant_arg if spec else None, "tenant") or task.tenant,
    )
    secret_paths = tuple(sorted({f.path for f in findings if f.data_class == SECRET}))
    logging = policy.logging
    if secret_paths:  # what the scanner calls a secret is redacted, whatever the rules say
        logging = logging.merge(LoggingRequirement("none", secret_paths))
    return Facts(
        tool=tool,
        intent=spec.intent if spec else UNKNOWN,
        resource=spec.resource if spec else None,
        boundary=boundary,
        logging=logging,
        findings=tuple(findings),
        description=spec.description if spec else None,
        intent_source="unknown" if spec is None else ("policy" if tool in policy.tools else "tool"),
    )


def _strings(args: Mapping[str, Any]) -> list[tuple[str, str, str, str]]:
    """(path, top-level argument, nearest key, text) for every string in the arguments."""
    out: list[tuple[str, str, str, str]] = []
    for key, value in args.items():
        if isinstance(value, str):
            out.append((f"args.{key}", key, key, value))
        elif isinstance(value, (dict, list)):
            _nested(value, f"args.{key}", key, key, out)
    return out


def _nested(
    value: Any, path: str, top: str, key: str, out: list[tuple[str, str, str, str]]
) -> None:
    if isinstance(value, str):
        out.append((path, top, key, value))
    elif isinstance(value, dict):
        for k, v in value.items():
            _nested(v, f"{path}.{k}", top, k, out)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _nested(v, f"{path}[{i}]", top, key, out)


def _pick(args: Mapping[str, Any], declared: str | None, *names: str) -> str | None:
    for name in (declared,) if declared else names:
        value = args.get(name)
        if isinstance(value, str) and value:
            return value
    return None
