"""``guardrail demo``: the five scenarios as agent tool calls, a table of decisions, evidence."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from guardrail._cli._scenarios import (
    APPROVED,
    EPISODES,
    REJECTED,
    Episode,
    build_tools,
    simulated_client,
)
from guardrail._cli._scenarios import demo_approver as _approver
from guardrail._confirm import Approval, CallbackConfirmer, ConfirmationRequest, ConsoleConfirmer
from guardrail._guard import Guard
from guardrail._model import Decision, Effect, ToolCall
from guardrail._policy import load_policy
from guardrail.credentials import Credential, CredentialError, CredentialIssuer, verify_credential


@dataclass(frozen=True)
class Row:
    """One played call: what was expected and what the guard decided."""

    scenario: str
    call: str
    expect: str
    outcome: str
    decision: Decision
    note: str
    result: Any


def outcome_of(decision: Decision) -> str:
    """The table's word for a final decision, naming confirmations and their answer."""
    if decision.approver is not None:
        return APPROVED
    if "guardrail:not-confirmed" in decision.rule_ids:
        return REJECTED
    return decision.effect.value


def auto_confirmer() -> CallbackConfirmer:
    """Answers like the demo's approver would, bound to the request it was given."""

    def answer(request: ConfirmationRequest) -> Approval:
        approved, note = _approver(request.tool)
        return Approval(request.approval_id, request.binding, approved, "demo-approver", note)

    return CallbackConfirmer(answer)


def demo_guard(
    *,
    confirmer: Any,
    policies: tuple[str, ...] = (),
    tracer_provider: Any = None,
    spool: Any = None,
) -> tuple[Guard, CredentialIssuer]:
    """The guard the demo (and the scenario tests) use: bundled policies, simulated services,
    a credential issuer."""
    from guardrail.policies import policy_path

    issuer = CredentialIssuer()
    guard = Guard(
        load_policy(*(policies or (policy_path(),))),
        confirmer=confirmer,
        tracer_provider=tracer_provider,
        spool=spool,
        credentials=issuer,
        http_client=simulated_client(),
    )
    return guard, issuer


def play(
    guard: Guard,
    issuer: CredentialIssuer | None = None,
    episodes: tuple[Episode, ...] = EPISODES,
    minted: list[Credential] | None = None,
) -> list[Row]:
    """Run every episode's calls through guarded tools, the way an agent's loop would."""
    tools = build_tools(guard, issuer, minted)
    rows: list[Row] = []
    for episode in episodes:
        with guard.task(principal=episode.principal, **episode.task):
            for step in episode.steps:
                decisions: list[Decision] = []
                result = _dispatch(guard, tools, step.tool, step.args, decisions.append)
                decision = decisions[-1]
                call = f"{step.tool}({_short_args(step.args)})"
                rows.append(
                    Row(
                        episode.scenario,
                        call,
                        step.expect,
                        outcome_of(decision),
                        decision,
                        step.note,
                        result,
                    )
                )
    return rows


def cross_environment_check(issuer: CredentialIssuer, credential: Credential) -> str:
    """What the deploy API says when a staging token is presented for prod."""
    try:
        verify_credential(
            credential.token, key=issuer.public_key_pem, audience="deploy-api", environment="prod"
        )
    except CredentialError as err:
        return f"refused: {err}"
    return "ACCEPTED (this must not happen)"


def _dispatch(
    guard: Guard,
    tools: dict[str, Callable[..., Any]],
    name: str,
    args: dict[str, Any],
    seen: Callable[[Decision], None],
) -> Any:
    """Call a tool by the name the model gave; a name with no tool is still decided."""
    with guard.listening(seen):
        tool = tools.get(name)
        if tool is None:
            return guard.execute(ToolCall(name, args), lambda _: None, on_deny=lambda _: None)
        try:
            return tool(**args)
        except Exception as err:
            return err


def _short_args(args: dict[str, Any]) -> str:
    text = ", ".join(f"{k}={v!r}" for k, v in args.items())
    return text if len(text) <= 48 else text[:47] + "…"


def run_demo(
    *, interactive: bool, policies: tuple[str, ...], trace_file: str | None, spool_path: str
) -> None:
    """Play the scenarios against the policies, print the table, write the evidence."""
    from guardrail.shipping import Shipper
    from guardrail.spool import Spool
    from guardrail.telemetry import configure

    started = time.perf_counter()
    telemetry = configure(service_name="guardrail-demo", trace_file=trace_file)
    spool = Spool(spool_path, stream="guardrail-demo")
    shipper = Shipper(spool, telemetry.exporter, resource=telemetry.provider.resource).start()
    confirmer = ConsoleConfirmer() if interactive else auto_confirmer()
    guard, issuer = demo_guard(
        confirmer=confirmer, policies=policies, tracer_provider=telemetry.provider, spool=spool
    )
    minted: list[Credential] = []
    rows = play(guard, issuer, minted=minted)
    shipped = shipper.stop(timeout_s=10)
    telemetry.shutdown()
    console = Console(width=None if Console().is_terminal else 150)
    console.print(_table(rows))
    mismatched = [r for r in rows if r.outcome != r.expect]
    counts = {e.value: sum(r.decision.effect is e for r in rows) for e in Effect}
    console.print(
        f"{len(rows)} calls: {counts['allow']} ran, {counts['deny']} stopped; "
        f"{sum(r.outcome in (APPROVED, REJECTED) for r in rows)} asked a human "
        f"({'asked on this terminal' if interactive else 'auto-answered'}); "
        f"{time.perf_counter() - started:.2f}s"
    )
    if mismatched and not interactive and not policies:
        console.print(f"[red]{len(mismatched)} call(s) did not get the expected decision[/red]")
    staging = next(
        (c for c in minted if c.claims.get("guardrail", {}).get("environment") == "staging"),
        None,
    )
    if staging is not None:
        check = cross_environment_check(issuer, staging)
        console.print(f"Deploy API, given the staging token for prod: {escape(check)}")
    console.print(
        f"Evidence: one span per call, plus the durable records, written to {telemetry.where}."
    )
    state = "all delivered" if shipped else f"{spool.count_pending()} still to deliver"
    console.print(
        f"Durable records: {spool.path} ({state}); check them with "
        f"`guardrail audit verify {spool.path}`."
    )
    if telemetry.where.endswith(".jsonl"):
        console.print(
            "View the traces in Jaeger: Search -> Upload JSON, or see README 'Evidence in "
            "Jaeger' to export straight to a running Jaeger."
        )
    spool.close()


def _table(rows: list[Row]) -> Table:
    table = Table(
        title="outcome-guardrail demo: five scenarios, one policy set",
        show_lines=False,
        expand=True,
    )
    for name, style in (
        ("scenario", "cyan"),
        ("agent call", ""),
        ("decision", ""),
        ("rule", "magenta"),
        ("reason", ""),
    ):
        table.add_column(name, style=style, overflow="fold")
    colours = {"allow": "green", "deny": "red", APPROVED: "yellow", REJECTED: "red"}
    for r in rows:
        label = f"[{colours.get(r.outcome, 'white')}]{r.outcome}[/]"
        note = f" [dim]({r.note})[/dim]" if r.note else ""
        rule = ", ".join(x for x in r.decision.rule_ids if x != "guardrail:not-confirmed")
        table.add_row(
            r.scenario, escape(r.call) + note, label, escape(rule), escape(r.decision.reason)
        )
    return table
