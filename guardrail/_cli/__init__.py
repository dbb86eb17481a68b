"""The ``guardrail`` command: check, test and explain policies; run the demo.

Exit codes: ``check``/``test``: 0 ok, 1 an example failed, 2 invalid input or policy;
``explain``: 0 allow, 1 deny, 3 confirm, 2 invalid input. Errors are one readable paragraph.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click
from pydantic import ValidationError

from guardrail._errors import GuardrailError, PolicyError
from guardrail._examples import run_examples
from guardrail._guard import Guard
from guardrail._model import ANONYMOUS, NO_TASK, Decision, Effect, Principal, Task, ToolCall
from guardrail._policy import load_policy

EXIT_CODES = {Effect.ALLOW: 0, Effect.DENY: 1, Effect.CONFIRM: 3}


class UsageProblem(GuardrailError):
    """Bad command-line input; the message says which option and how to fix it."""


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="outcome-guardrail", prog_name="guardrail")
def cli() -> None:
    """Outcome policies between AI agents and their tools."""


@cli.command()
@click.argument("policies", nargs=-1, required=True, type=click.Path())
def check(policies: tuple[str, ...]) -> None:
    """Validate policy files or directories (exit 0 ok, 2 invalid)."""
    policy = load_policy(*policies)
    click.echo(
        f"ok: {policy.name} version {policy.version}: {len(policy.rules)} rules, "
        f"{len(policy.tools)} tools, {len(policy.examples)} examples, {policy.digest}"
    )


@cli.command("test")
@click.argument("policies", nargs=-1, required=True, type=click.Path())
def test_cmd(policies: tuple[str, ...]) -> None:
    """Run the example calls carried by policy files (exit 0 all pass, 1 a failure)."""
    results = run_examples(load_policy(*policies))
    for r in results:
        mark = click.style("PASS", fg="green") if r.passed else click.style("FAIL", fg="red")
        click.echo(f"{mark} {r.example.source} {r.example.name}")
        if r.problem:
            click.echo(f"     {r.problem}")
    failed = sum(not r.passed for r in results)
    click.echo(f"{len(results) - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


@cli.command()
@click.option(
    "--policy",
    "policies",
    multiple=True,
    required=True,
    type=click.Path(),
    help="Policy file or directory (repeatable).",
)
@click.option("--tool", required=True, help="Tool name as the agent would call it.")
@click.option("--args", "args_json", default="{}", show_default=True, help="Arguments as JSON.")
@click.option(
    "--principal", "principal_json", help='Who acts, as JSON: {"id": ..., "roles": [...]}.'
)
@click.option("--task", "task_json", help='The task, as JSON: {"goal": ..., "environment": ...}.')
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
def explain(
    policies: tuple[str, ...],
    tool: str,
    args_json: str,
    principal_json: str | None,
    task_json: str | None,
    fmt: str,
) -> None:
    """Decide one call and explain why (exit 0 allow, 1 deny, 3 confirm)."""
    guard = Guard(load_policy(*policies))
    args = _json_option("--args", args_json)
    if not isinstance(args, dict):
        raise UsageProblem("--args must be a JSON object, like '{\"amount\": 120.0}'")
    principal = _model_option("--principal", principal_json, Principal, ANONYMOUS)
    task = _model_option("--task", task_json, Task, NO_TASK)
    decision = guard.decide(ToolCall(tool, args), principal=principal, task=task)
    if fmt == "json":
        click.echo(json.dumps(decision.to_dict(), indent=2, ensure_ascii=False))
    else:
        _print_decision(decision)
    sys.exit(EXIT_CODES[decision.effect])


@cli.command()
@click.option("--interactive", is_flag=True, help="Ask on this terminal instead of auto-answering.")
@click.option(
    "--policy",
    "policies",
    multiple=True,
    type=click.Path(),
    help="Policy files to use instead of the bundled ones.",
)
@click.option(
    "--trace-file",
    type=click.Path(),
    default=None,
    help="Where to write OTLP-JSON evidence when no OTLP endpoint is set.",
)
@click.option(
    "--spool",
    "spool_path",
    type=click.Path(),
    default="guardrail-spool.sqlite",
    show_default=True,
    help="The durable evidence spool.",
)
def demo(
    interactive: bool, policies: tuple[str, ...], trace_file: str | None, spool_path: str
) -> None:
    """Play the five scenarios as agent tool calls and write the evidence."""
    from guardrail._cli._demo import run_demo

    run_demo(
        interactive=interactive, policies=policies, trace_file=trace_file, spool_path=spool_path
    )


@cli.group()
def audit() -> None:
    """Check and ship audit evidence."""


@audit.command("verify")
@click.argument("sources", nargs=-1, type=click.Path(exists=True, dir_okay=False))
@click.option("--jaeger", help="Base URL of a Jaeger v2 query service, e.g. http://localhost:16686")
@click.option(
    "--service",
    default="outcome-guardrail",
    show_default=True,
    help="The service whose traces to check (with --jaeger).",
)
@click.option("--lookback", default=24.0, show_default=True, help="Hours back (with --jaeger).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
def audit_verify(
    sources: tuple[str, ...], jaeger: str | None, service: str, lookback: float, fmt: str
) -> None:
    """Check evidence for deleted, altered and reordered records and unauthorised runs
    (exit 0 intact, 1 findings, 2 unreadable input)."""
    from datetime import timedelta

    from guardrail import audit as checks

    if not sources and not jaeger:
        raise UsageProblem("give a spool or trace file, or --jaeger URL; see --help")
    records = [r for path in sources for r in checks.records_from_file(path)]
    ordered = True
    if jaeger:
        ordered = False
        records += checks.records_from_jaeger(jaeger, service, lookback=timedelta(hours=lookback))
    report = checks.verify(records, source_ordered=ordered and len(sources) <= 1)
    if fmt == "json":
        click.echo(
            json.dumps(
                {
                    "records": report.records,
                    "streams": report.streams,
                    "findings": [
                        f.__dict__
                        if hasattr(f, "__dict__")
                        else {"kind": f.kind, "stream": f.stream, "seq": f.seq, "detail": f.detail}
                        for f in report.findings
                    ],
                },
                indent=2,
            )
        )
    else:
        for finding in report.findings:
            click.echo(str(finding))
        verdict = "intact" if report.ok else f"{len(report.findings)} finding(s)"
        click.echo(f"{report.records} records in {report.streams} stream(s): {verdict}")
    sys.exit(0 if report.ok else 1)


@audit.command("ship")
@click.argument("spool_path", type=click.Path(exists=True, dir_okay=False))
@click.option("--timeout", default=30.0, show_default=True, help="Seconds to keep trying.")
def audit_ship(spool_path: str, timeout: float) -> None:
    """Export a spool's undelivered records to the configured collector (OTEL_* variables)."""
    from guardrail.shipping import Shipper
    from guardrail.spool import Spool
    from guardrail.telemetry import configure

    telemetry = configure()
    spool = Spool(spool_path)
    shipper = Shipper(spool, telemetry.exporter, resource=telemetry.provider.resource)
    done = shipper.flush(timeout)
    click.echo(
        f"delivered {shipper.delivered} record(s) to {telemetry.where}; "
        f"{spool.count_pending()} pending"
    )
    telemetry.shutdown()
    sys.exit(0 if done else 1)


def _json_option(option: str, text: str) -> Any:
    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [k for k, _ in pairs]
        duplicate = next((k for k in keys if keys.count(k) > 1), None)
        if duplicate is not None:
            raise UsageProblem(f"{option} has the key '{duplicate}' twice; give each key once")
        return dict(pairs)

    try:
        return json.loads(text, object_pairs_hook=no_duplicates)
    except json.JSONDecodeError as err:
        raise UsageProblem(
            f"{option} is not valid JSON ({err.msg} at line {err.lineno} column "
            f"{err.colno}); quote it for the shell, e.g. '{{\"key\": 1}}'"
        ) from None


def _model_option(option: str, text: str | None, model: Any, default: Any) -> Any:
    if text is None:
        return default
    try:
        return model.model_validate(_json_option(option, text))
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "value"
        raise UsageProblem(
            f"{option} is not a valid {model.__name__}: {where}: {first['msg']} "
            f"(fields: {', '.join(model.model_fields)})"
        ) from None


def _print_decision(d: Decision) -> None:
    colour = {"allow": "green", "deny": "red", "confirm": "yellow"}[d.effect.value]
    click.echo(f"{click.style(d.effect.value.upper(), fg=colour, bold=True)}  {d.tool}")
    click.echo(f"  rules:       {', '.join(d.rule_ids)}")
    click.echo(f"  reason:      {d.reason}")
    click.echo(f"  to the agent: {d.instruction}")
    if d.facts:
        b = d.facts.boundary
        click.echo(f"  intent:      {d.facts.intent} (resource: {d.facts.resource or '-'})")
        click.echo(
            f"  boundary:    data={list(b.data_classes)} destinations="
            f"{list(b.destination_hosts)} external={list(b.external_hosts)} "
            f"environment={b.environment or '-'}"
        )
        click.echo(
            f"  logging:     level={d.facts.logging.level} redact="
            f"{list(d.facts.logging.redact)} durable={d.facts.logging.durable}"
        )
    if d.facts and d.facts.context:
        facts = ", ".join(f"{k}: {v}" for k, v in d.facts.context.items())
        click.echo(f"  context:     {facts}")
    if d.controls:
        click.echo(f"  controls:    {', '.join(d.controls)}")
    click.echo(f"  policy:      {d.policy_name} {d.policy_version} {d.policy_digest[:19]}")


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``guardrail`` command; never shows a traceback."""
    try:
        cli.main(args=argv, prog_name="guardrail", standalone_mode=False)
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)
    except click.ClickException as err:
        err.show()
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(2)
    except PolicyError as err:
        click.echo(str(err), err=True)
        sys.exit(2)
    except GuardrailError as err:
        click.echo(f"guardrail: {err}", err=True)
        sys.exit(2)
    except Exception as err:  # one paragraph, not a traceback
        click.echo(
            f"guardrail: unexpected {type(err).__name__}: {err}. Re-run with "
            f"GUARDRAIL_DEBUG=1 to see where it came from.",
            err=True,
        )
        if _debug():
            raise
        sys.exit(2)


def _debug() -> bool:
    import os

    return os.environ.get("GUARDRAIL_DEBUG") == "1"


__all__ = ["cli", "main"]
