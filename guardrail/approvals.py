"""Approval channels beside the console and a callback, and a shared approval store.

- `HttpApprovalConfirmer` asks an approval service over HTTP. Requests and answers are signed
  with HMAC-SHA256 over ``timestamp.body``; an unsigned, forged or stale answer, or none in
  time, is a deny. The approver's identity comes back in the signed answer.
- `QuorumConfirmer` asks N confirmers and approves when M distinct approvers approved.
- `SqliteApprovalStore` keeps open requests in SQLite, so single use holds across processes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import sqlite3
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx

from guardrail._canonical import canonical_json
from guardrail._confirm import (
    UNKNOWN_APPROVAL,
    Approval,
    ConfirmationRequest,
    Confirmer,
    as_approval,
    judge_answer,
    new_request,
)
from guardrail._errors import GuardrailError
from guardrail._model import Decision, Principal, Task

SIGNATURE = "X-Guardrail-Signature"
TIMESTAMP = "X-Guardrail-Timestamp"
MAX_SKEW_S = 300

__all__ = [
    "SIGNATURE",
    "TIMESTAMP",
    "ApprovalServiceError",
    "HttpApprovalConfirmer",
    "QuorumConfirmer",
    "SqliteApprovalStore",
    "sign",
    "verify_signature",
]


class ApprovalServiceError(GuardrailError):
    """The approval service's answer cannot be trusted or read."""


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """The signature over ``timestamp.body``."""
    mac = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={mac}"


def verify_signature(secret: bytes, headers: Mapping[str, str], body: bytes) -> None:
    """Check a signed message's signature and freshness.

    Raises:
        ApprovalServiceError: unsigned, forged or stale.
    """
    timestamp, given = headers.get(TIMESTAMP), headers.get(SIGNATURE)
    if not timestamp or not given:
        raise ApprovalServiceError("the answer is not signed")
    if not hmac.compare_digest(sign(secret, timestamp, body), given):
        raise ApprovalServiceError("the answer's signature does not match")
    try:
        age = abs(time.time() - float(timestamp))
    except ValueError:
        raise ApprovalServiceError("the answer's timestamp is unreadable") from None
    if age > MAX_SKEW_S:
        raise ApprovalServiceError("the answer is stale")


class HttpApprovalConfirmer:
    """Asks an HTTP approval service: POST the request, then poll until decided.

    The service answers ``{"approval_id", "binding", "status": "approved" | "rejected" |
    "pending", "approver", "note"}`` signed like the request. Anything else is a rejection.

    Args:
        url: the service's requests endpoint; answers are polled at ``{url}/{approval_id}``.
        secret: the shared HMAC key.
        timeout_s: how long to wait for a human before the call is denied.
        poll_interval_s: pause between polls.
        client: an ``httpx.Client`` to use (tests, proxies, TLS settings).
    """

    def __init__(
        self,
        url: str,
        secret: bytes,
        *,
        timeout_s: float = 120.0,
        poll_interval_s: float = 1.0,
        client: httpx.Client | None = None,
    ) -> None:
        self._url = url.rstrip("/")
        self._secret = secret
        self._timeout_s = timeout_s
        self._poll_s = poll_interval_s
        self._client = client or httpx.Client(timeout=10)

    def confirm(self, request: ConfirmationRequest) -> Approval | bool:
        """Send the request; return the service's verified answer."""
        body = canonical_json(_payload(request)).encode()
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP: timestamp,
            SIGNATURE: sign(self._secret, timestamp, body),
        }
        deadline = time.monotonic() + self._timeout_s
        answer = self._read(self._client.post(self._url, content=body, headers=headers))
        while answer is None:
            if time.monotonic() >= deadline:
                return Approval(
                    request.approval_id,
                    request.binding,
                    False,
                    "approval-service",
                    "no answer in time",
                )
            time.sleep(self._poll_s)
            answer = self._read(self._client.get(f"{self._url}/{request.approval_id}"))
        return answer

    def _read(self, response: httpx.Response) -> Approval | None:
        response.raise_for_status()
        verify_signature(self._secret, response.headers, response.content)
        data = json.loads(response.content)
        if not isinstance(data, dict):
            raise ApprovalServiceError("the answer is not a JSON object")
        status = data.get("status")
        if status == "pending":
            return None
        return Approval(
            str(data.get("approval_id", "")),
            str(data.get("binding", "")),
            status == "approved",
            str(data.get("approver") or "approval-service")[:128],
            str(data.get("note") or "")[:500],
        )


def _payload(request: ConfirmationRequest) -> dict[str, Any]:
    d = request.decision
    return {
        "approval_id": request.approval_id,
        "binding": request.binding,
        "expires_at": request.expires_at,
        "tool": d.tool,
        "args": request.shown_args(),
        "reason": d.reason,
        "rule_ids": list(d.rule_ids),
        "principal": request.principal.id,
        "chain": [request.principal.id, *(p.id for p in request.principal.delegation)],
        "task": {"id": request.task.id, "goal": request.task.goal},
        "policy_digest": d.policy_digest,
    }


class QuorumConfirmer:
    """Approves when ``required`` distinct approvers among ``confirmers`` approved the exact
    request; asks them all at once and stops waiting once the outcome is certain."""

    def __init__(self, confirmers: Sequence[Confirmer], required: int) -> None:
        if not 1 <= required <= len(confirmers):
            raise ValueError(f"required must be between 1 and {len(confirmers)}, not {required}")
        self._confirmers = list(confirmers)
        self._required = required

    def confirm(self, request: ConfirmationRequest) -> Approval:
        """Collect the answers; approve with the approvers' names, or reject."""
        answers: list[Approval] = []
        done = threading.Condition()

        def ask(confirmer: Confirmer, index: int) -> None:
            try:
                answer = as_approval(confirmer.confirm(request), request, f"confirmer-{index}")
            except Exception:
                answer = Approval(
                    request.approval_id, request.binding, False, f"confirmer-{index}", "failed"
                )
            with done:
                answers.append(answer)
                done.notify_all()

        for i, c in enumerate(self._confirmers):
            threading.Thread(target=ask, args=(c, i), daemon=True).start()
        with done:
            while True:
                approvers = self._approvers(answers, request)
                no = len(answers) - len(approvers)
                if len(approvers) >= self._required or no > len(self._confirmers) - self._required:
                    break
                done.wait()
        approved = len(approvers) >= self._required
        if approved:
            return Approval(request.approval_id, request.binding, True, "+".join(sorted(approvers)))
        note = f"only {len(approvers)} of the {self._required} approvals needed"
        return Approval(request.approval_id, request.binding, False, "quorum", note)

    @staticmethod
    def _approvers(answers: list[Approval], request: ConfirmationRequest) -> set[str]:
        return {
            a.approver
            for a in answers
            if a.approved and a.binding == request.binding and a.approval_id == request.approval_id
        }


class SqliteApprovalStore:
    """Open approval requests in SQLite: single use holds across threads and processes."""

    def __init__(self, path: str | Path, *, ttl_s: float = 300.0) -> None:
        self._ttl_s = ttl_s
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            Path(path), isolation_level=None, check_same_thread=False, timeout=10
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS approvals (approval_id TEXT PRIMARY KEY, binding TEXT "
            "NOT NULL, expires_at REAL NOT NULL, used INTEGER NOT NULL DEFAULT 0)"
        )

    def open(
        self, decision: Decision, args: Mapping[str, Any], principal: Principal, task: Task
    ) -> ConfirmationRequest:
        """Create the request; an id used before stays used."""
        request = new_request(decision, args, principal, task, self._ttl_s)
        with self._lock:
            self._db.execute(
                "INSERT INTO approvals (approval_id, binding, expires_at) VALUES (?, ?, ?) "
                "ON CONFLICT (approval_id) DO UPDATE SET expires_at = excluded.expires_at "
                "WHERE used = 0",
                (request.approval_id, request.binding, request.expires_at),
            )
        return request

    def redeem(self, approval: Approval) -> str | None:
        """Claim the request atomically (one UPDATE), then judge the answer."""
        with self._lock:
            row = self._db.execute(
                "UPDATE approvals SET used = 1 WHERE approval_id = ? AND used = 0 "
                "RETURNING binding, expires_at",
                (approval.approval_id,),
            ).fetchone()
        if row is None:
            return UNKNOWN_APPROVAL
        return judge_answer(approval, row[0], float(row[1]))

    def withdraw(self, approval_id: str) -> None:
        """Drop an unanswered request."""
        with self._lock:
            self._db.execute(
                "DELETE FROM approvals WHERE approval_id = ? AND used = 0", (approval_id,)
            )
