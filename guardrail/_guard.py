"""`Guard`: the one pipeline every entry point feeds.

extract -> decide -> (confirm) -> re-check arguments -> execute -> evidence.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import threading
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar, overload

import httpx
from opentelemetry.trace import Span, TracerProvider

from guardrail import _semconv as sc
from guardrail._asking import (
    ask_async,
    ask_sync,
    close_request,
    denied,
    open_request,
    passthrough,
)
from guardrail._canonical import canonical_args, digest
from guardrail._confirm import (
    ApprovalLedger,
    ApprovalStore,
    ConfirmationRequest,
    Confirmer,
)
from guardrail._context import ContextFacts, ContextSources, ProviderFn
from guardrail._decide import Subject, evaluate_call, normalize_tool_name, refusal
from guardrail._durable import Evidence, EvidenceSink
from guardrail._errors import ToolCallDenied
from guardrail._evidence import Recorder
from guardrail._model import Decision, Effect, Principal, Task, ToolCall
from guardrail._policy import OutcomePolicy, ToolSpec, load_policy
from guardrail._task import Scope, TaskScope, current_scope
from guardrail._tool import OnDeny, register_tool
from guardrail.credentials import Credential, CredentialIssuer, _reset_current, _set_current

R = TypeVar("R")
MAX_EDITS = 3
F = TypeVar("F", bound=Callable[..., Any])
_log = logging.getLogger("guardrail")


class Guard:
    """Puts an outcome policy between an agent and its tools.

    Args:
        policy: the compiled policy (see `load_policy`).
        confirmer: asked when a rule's effect is ``confirm``; without one, such calls are denied.
        tracer_provider: where evidence spans go (default: the global provider).
        confirm_timeout_s: how long a confirmer may take before the call is denied.
        approval_ttl_s: how long an approval request stays valid.
        decision_budget_s: time budget for evaluating the rules of one call.
        on_decision: called with every final decision of a guarded call (for metrics, logs);
            its errors are logged and never change the decision.
        spool: a durable evidence spool (`guardrail.spool.Spool`): every decision is written
            to it before the action runs. A call whose logging requirement is ``durable`` is
            denied when there is no spool or it cannot take the record.
        credentials: mints the short-lived credential a rule's ``credential:`` obligation asks
            for (`guardrail.credentials.CredentialIssuer`); without one such calls are denied.
        approvals: where open approval requests live (default: in memory); use
            `guardrail.approvals.SqliteApprovalStore` to share single use across processes.
        providers: live facts supplied in code, by name: ``fn(facts) -> value``, read by
            rules as ``context.<name>`` (beside the policy's HTTP providers).
        http_client: the ``httpx.Client`` the policy's HTTP providers use.
    """

    def __init__(
        self,
        policy: OutcomePolicy,
        *,
        confirmer: Confirmer | None = None,
        tracer_provider: TracerProvider | None = None,
        confirm_timeout_s: float = 300.0,
        approval_ttl_s: float = 300.0,
        decision_budget_s: float = 1.0,
        on_decision: Callable[[Decision], object] | None = None,
        spool: EvidenceSink | None = None,
        credentials: CredentialIssuer | None = None,
        approvals: ApprovalStore | None = None,
        providers: Mapping[str, ProviderFn] | None = None,
        http_client: httpx.Client | None = None,
    ) -> None:
        self._policy = policy
        self._confirmer = confirmer
        self._recorder = Recorder(tracer_provider)
        self._ledger: ApprovalStore = approvals or ApprovalLedger(approval_ttl_s)
        self._tools: dict[str, ToolSpec] = {}
        self._tools_lock = threading.Lock()
        self._sequence = itertools.count(1)
        self._confirm_timeout_s = confirm_timeout_s
        self._budget_s = decision_budget_s
        self._listeners: tuple[Callable[[Decision], object], ...] = (
            (on_decision,) if on_decision else ()
        )
        self._listeners_lock = threading.Lock()
        self._evidence = Evidence(self._recorder, spool)
        self._issuer = credentials
        self._sources = (
            ContextSources(policy, providers, client=http_client)
            if policy.providers or providers
            else None
        )

    @classmethod
    def from_path(cls, *paths: str | os.PathLike[str], **options: Any) -> Guard:
        """A guard for the policy in these files or directories (see `load_policy`)."""
        return cls(load_policy(*paths), **options)

    @property
    def policy(self) -> OutcomePolicy:
        """The compiled policy this guard enforces."""
        return self._policy

    @contextmanager
    def listening(self, listener: Callable[[Decision], object]) -> Iterator[None]:
        """Call ``listener`` with every final decision of a guarded call while inside.

        Its errors are logged and never change a decision.
        """
        with self._listeners_lock:
            self._listeners = (*self._listeners, listener)
        try:
            yield
        finally:
            with self._listeners_lock:
                kept = list(self._listeners)
                kept.remove(listener)
                self._listeners = tuple(kept)

    @property
    def tools(self) -> Mapping[str, ToolSpec]:
        """Tools registered through `tool` or `register`, by name."""
        return dict(self._tools)

    # -- tasks ------------------------------------------------------------------------------

    def task(
        self,
        goal: str = "",
        *,
        principal: Principal | None = None,
        intents: Iterable[str] = (),
        environment: str | None = None,
        tenant: str | None = None,
        ticket: str | None = None,
        budget: float | None = None,
        expires_in: timedelta | float | None = None,
        task_id: str | None = None,
        attributes: Mapping[str, Any] | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> TaskScope:
        """Enter a task: every call inside is judged for ``principal`` against this task."""
        if isinstance(expires_in, (int, float)):
            expires_in = timedelta(seconds=expires_in)
        fields: dict[str, Any] = {
            "goal": goal,
            "intents": tuple(intents),
            "environment": environment,
            "tenant": tenant,
            "ticket": ticket,
            "budget": budget,
            "expires_at": datetime.now(timezone.utc) + expires_in if expires_in else None,
            "attributes": dict(attributes or {}),
            "context": dict(context or {}),
        }
        if task_id:
            fields["id"] = task_id
        owner = principal or current_scope().subject.principal
        return TaskScope(self._recorder, owner, Task(**fields))

    # -- deciding ---------------------------------------------------------------------------

    def decide(
        self, call: ToolCall, *, principal: Principal | None = None, task: Task | None = None
    ) -> Decision:
        """Decide one call without running anything. Never raises: failures are denies."""
        try:
            subject = self._subject(principal, task)
        except Exception as err:
            return self._refuse(call, f"the principal or task is unusable ({err})")
        return evaluate_call(
            self._policy,
            call,
            subject,
            self._resolve,
            budget_s=self._budget_s,
            load_context=self._load_context,
        )[0]

    async def adecide(
        self, call: ToolCall, *, principal: Principal | None = None, task: Task | None = None
    ) -> Decision:
        """Async twin of `decide` (live context is fetched off the event loop)."""
        if self._sources is None:
            return self.decide(call, principal=principal, task=task)
        return await asyncio.to_thread(self.decide, call, principal=principal, task=task)

    def _load_context(self, names: frozenset[str], facts: Mapping[str, Any]) -> ContextFacts:
        if self._sources is None:
            return ContextFacts()
        return self._sources.fetch(names & self._sources.names, facts)

    def _subject(self, principal: Principal | None, task: Task | None) -> Subject:
        scope = current_scope().subject
        if principal is None and task is None:
            return scope
        return Subject.of(principal or scope.principal, task or scope.task)

    def _resolve(self, name: str) -> ToolSpec | None:
        # the policy's map wins: security owners decide what a tool is for
        return self._policy.tools.get(name) or self._tools.get(name)

    def refuse(
        self,
        call: ToolCall,
        reason: str,
        *,
        principal: Principal | None = None,
        task: Task | None = None,
    ) -> Decision:
        """Record a call that was refused before it could be decided (a framework's schema
        rejected its arguments, say): a deny with its evidence, so no attempt goes unseen."""
        scope = self._scope(principal, task)
        decision = refusal(self._policy, call, "guardrail:refused-upstream", reason)
        with self._recorder.call_span(_span_name(call), str(call.id), None) as span:
            decision = self._evidence.persist(span, decision, scope, {})
            self._record(span, decision, scope, {})
            self._recorder.finish(span, decision, nested=_nested(span))
        return decision

    def _refuse(self, call: ToolCall, reason: str) -> Decision:
        return refusal(self._policy, call, "guardrail:error", reason, errors=(reason,))

    # -- registering tools ------------------------------------------------------------------

    def register(self, spec: ToolSpec) -> None:
        """Declare what a tool is for (adapters call this for the tools they wrap)."""
        register_tool(self._tools, self._tools_lock, spec)

    @overload
    def tool(self, fn: F, /) -> F: ...
    @overload
    def tool(
        self,
        fn: None = None,
        /,
        *,
        intent: str | None = None,
        resource: str | None = None,
        name: str | None = None,
        description: str | None = None,
        reads: Iterable[str] = (),
        writes: Iterable[str] = (),
        destinations: Iterable[str] = (),
        environment_arg: str | None = None,
        tenant_arg: str | None = None,
        on_deny: OnDeny = "raise",
    ) -> Callable[[F], F]: ...

    def tool(
        self,
        fn: F | None = None,
        /,
        *,
        intent: str | None = None,
        resource: str | None = None,
        name: str | None = None,
        description: str | None = None,
        reads: Iterable[str] = (),
        writes: Iterable[str] = (),
        destinations: Iterable[str] = (),
        environment_arg: str | None = None,
        tenant_arg: str | None = None,
        on_deny: OnDeny = "raise",
    ) -> F | Callable[[F], F]:
        """Guard a sync or async function: ``@guard.tool(intent="purchase", resource="order")``.

        The returned function is the only handle the agent should get: every call is decided,
        confirmed where needed, re-checked and recorded before the function body runs. A
        denial raises `ToolCallDenied`, or returns ``on_deny(decision)`` if a callable is given.
        """
        from guardrail._tool import guard_function

        options: dict[str, Any] = {
            "intent": intent,
            "resource": resource,
            "name": name,
            "description": description,
            "reads": reads,
            "writes": writes,
            "destinations": destinations,
            "environment_arg": environment_arg,
            "tenant_arg": tenant_arg,
            "on_deny": on_deny,
        }
        if fn is not None:
            return guard_function(self, fn, **options)
        return lambda f: guard_function(self, f, **options)

    # -- the pipeline -----------------------------------------------------------------------

    def execute(
        self,
        call: ToolCall,
        run: Callable[[Mapping[str, object]], R],
        *,
        description: str | None = None,
        on_deny: OnDeny = "raise",
        principal: Principal | None = None,
        task: Task | None = None,
        confirmer: Confirmer | None = None,
    ) -> R | Any:
        """Decide ``call`` and, if allowed, return ``run(args)``; record the evidence.

        ``run`` gets the arguments that were decided: ``call.args``, or the arguments a
        human edited while confirming (which are decided again from scratch first).
        ``principal``/``task`` override the current task scope; ``confirmer`` overrides the
        guard's (adapters use it to ask through their framework).
        """
        scope = self._scope(principal, task)
        asker = confirmer or self._confirmer
        for _ in range(MAX_EDITS + 1):
            with self._recorder.call_span(_span_name(call), str(call.id), description) as span:
                decision, args = self._decide_for_run(call, scope)
                edited = None
                if decision.effect is Effect.CONFIRM:
                    request = open_request(
                        self._recorder, self._ledger, span, decision, args, scope, asker
                    )
                    if isinstance(request, Decision):
                        decision = request
                    else:
                        assert asker is not None  # _open_request refused the call otherwise
                        answer = self._pending(span, decision, scope, args, asker, request)
                        decision, edited = close_request(
                            self._recorder, self._ledger, span, decision, request, answer
                        )
                if edited is not None:
                    self._record_edit(span, decision, scope, args)
                    call = ToolCall(call.tool, edited, call.id)
                    continue
                decision, credential = self._gate(span, call, decision, args, scope)
                if not decision.allowed:
                    return _denial(decision, on_deny)
                handed = _set_current(credential)
                try:
                    result = run(call.args)
                except BaseException as failure:
                    self._finish(span, decision, failure)
                    raise
                finally:
                    _reset_current(handed)
                self._finish(span, decision, None)
                return result
        return _denial(self._refuse(call, f"more than {MAX_EDITS} edits of one call"), on_deny)

    async def aexecute(
        self,
        call: ToolCall,
        run: Callable[[Mapping[str, object]], Awaitable[R]],
        *,
        description: str | None = None,
        on_deny: OnDeny = "raise",
        principal: Principal | None = None,
        task: Task | None = None,
        confirmer: Confirmer | None = None,
    ) -> R | Any:
        """Async twin of `execute`; ``run`` returns an awaitable."""
        scope = self._scope(principal, task)
        asker = confirmer or self._confirmer
        for _ in range(MAX_EDITS + 1):
            with self._recorder.call_span(_span_name(call), str(call.id), description) as span:
                if self._sources is None:
                    decision, args = self._decide_for_run(call, scope)
                else:  # live context means I/O: keep it off the event loop
                    decision, args = await asyncio.to_thread(self._decide_for_run, call, scope)
                edited = None
                if decision.effect is Effect.CONFIRM:
                    request = open_request(
                        self._recorder, self._ledger, span, decision, args, scope, asker
                    )
                    if isinstance(request, Decision):
                        decision = request
                    else:
                        assert asker is not None
                        try:
                            answer = await ask_async(asker, request, self._confirm_timeout_s)
                        except passthrough(asker):
                            self._record_pending(span, decision, scope, args)
                            raise
                        decision, edited = close_request(
                            self._recorder, self._ledger, span, decision, request, answer
                        )
                if edited is not None:
                    self._record_edit(span, decision, scope, args)
                    call = ToolCall(call.tool, edited, call.id)
                    continue
                decision, credential = self._gate(span, call, decision, args, scope)
                if not decision.allowed:
                    return _denial(decision, on_deny)
                handed = _set_current(credential)
                try:
                    result = await run(call.args)
                except BaseException as failure:
                    self._finish(span, decision, failure)
                    raise
                finally:
                    _reset_current(handed)
                self._finish(span, decision, None)
                return result
        return _denial(self._refuse(call, f"more than {MAX_EDITS} edits of one call"), on_deny)

    def _scope(self, principal: Principal | None, task: Task | None) -> Scope:
        scope = current_scope()
        if principal is None and task is None:
            return scope
        return Scope.of(principal or scope.subject.principal, task or scope.subject.task)

    def _decide_for_run(self, call: ToolCall, scope: Scope) -> tuple[Decision, dict[str, Any]]:
        return evaluate_call(
            self._policy,
            call,
            scope.subject,
            self._resolve,
            budget_s=self._budget_s,
            load_context=self._load_context,
        )

    def _gate(
        self, span: Span, call: ToolCall, decision: Decision, args: dict[str, Any], scope: Scope
    ) -> tuple[Decision, Credential | None]:
        """Re-check the arguments, mint the credential, commit and record the decision, and
        mark a denial on the span. A credential is minted only for a call that will run."""
        credential = None
        if decision.allowed:
            decision = self._recheck(decision, call)
        if decision.allowed and decision.credential is not None:
            decision, credential = self._mint(span, decision, scope)
        decision = self._evidence.persist(span, decision, scope, args)
        self._record(span, decision, scope, args)
        if not decision.allowed:
            self._recorder.finish(span, decision, nested=_nested(span))
            return decision, None
        return decision, credential

    def _mint(
        self, span: Span, decision: Decision, scope: Scope
    ) -> tuple[Decision, Credential | None]:
        grant = decision.credential
        assert grant is not None  # _gate asks only for decisions that carry a grant
        if self._issuer is None:
            reason = "the rule asks for a credential and the guard has no credential issuer"
            return denied(decision, "guardrail:credential-unavailable", reason), None
        try:
            subject = scope.subject
            credential = self._issuer.mint(decision, subject.principal, subject.task, grant)
        except Exception as err:
            reason = f"the credential could not be minted ({type(err).__name__})"
            return denied(decision, "guardrail:credential-unavailable", reason), None
        self._recorder.event(
            span,
            sc.EVENT_CREDENTIAL_ISSUED,
            {
                sc.CREDENTIAL_ID: credential.id,
                sc.CREDENTIAL_AUDIENCE: credential.audience,
                sc.CREDENTIAL_EXPIRES: int(credential.expires_at),
            },
        )
        return replace(decision, credential_id=credential.id), credential

    def _finish(self, span: Span, decision: Decision, failure: BaseException | None) -> None:
        self._recorder.finish(span, decision, nested=False, failure=failure)
        self._evidence.outcome(span, decision, failure)

    def _recheck(self, decision: Decision, call: ToolCall) -> Decision:
        """The arguments about to run must be the ones decided (and approved)."""
        try:
            now = digest(canonical_args(call.args))
        except Exception:
            now = ""
        if now == decision.args_digest:
            return decision
        return denied(
            decision,
            "guardrail:args-changed",
            "the arguments changed after the decision; decide the new call afresh",
        )

    def _record(self, span: Span, decision: Decision, scope: Scope, args: dict[str, Any]) -> None:
        try:
            self._recorder.decision(span, decision, next(self._sequence), scope.attributes, args)
        except Exception:  # evidence problems never change or break a decision
            _log.warning(
                "guardrail: could not record decision %s", decision.decision_id, exc_info=True
            )
        for listener in self._listeners:
            try:
                listener(decision)
            except Exception:
                _log.warning(
                    "guardrail: a decision listener failed for %s",
                    decision.decision_id,
                    exc_info=True,
                )

    # -- confirmation -----------------------------------------------------------------------

    def _pending(
        self,
        span: Span,
        decision: Decision,
        scope: Scope,
        args: dict[str, Any],
        confirmer: Confirmer,
        request: ConfirmationRequest,
    ) -> object:
        try:
            return ask_sync(confirmer, request, self._confirm_timeout_s)
        except passthrough(confirmer):
            self._record_pending(span, decision, scope, args)
            raise

    def _record_pending(
        self, span: Span, decision: Decision, scope: Scope, args: dict[str, Any]
    ) -> None:
        """The call waits for a human elsewhere (a paused graph): its evidence says so."""
        self._record(span, decision, scope, args)
        span.set_attribute(sc.OUTCOME, "awaiting-approval")

    def _record_edit(
        self, span: Span, decision: Decision, scope: Scope, args: dict[str, Any]
    ) -> None:
        self._record(span, decision, scope, args)
        span.set_attribute(sc.OUTCOME, "edited")


def _denial(decision: Decision, on_deny: OnDeny) -> Any:
    if on_deny == "raise":
        raise ToolCallDenied(decision)
    return on_deny(decision)


def _span_name(call: ToolCall) -> str:
    return normalize_tool_name(call.tool) or "invalid-tool-name"


def _nested(span: Span) -> bool:
    return getattr(span, "name", "").startswith("guardrail.decision")
