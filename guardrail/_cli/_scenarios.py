"""The five scenarios of the mission, scripted as an agent's tool calls.

Each episode is one task given to one principal; each step is a tool call the agent makes
inside it, with the outcome the bundled policies must produce. The third-party services the
policies ask (change management, identity posture, tickets, usage telemetry, vendor risk) are
simulated by `simulated_services`, an ``httpx`` transport: the HTTP path is the real one.
``guardrail demo`` plays the episodes; the test suite plays them too and checks every outcome.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from guardrail._guard import Guard
from guardrail._model import Principal
from guardrail.credentials import Credential, CredentialIssuer, verify_credential

APPROVED, REJECTED = "confirm → approved", "confirm → rejected"


@dataclass(frozen=True)
class Step:
    """One tool call an agent makes, and the outcome the policies must give it."""

    tool: str
    args: dict[str, Any]
    expect: str
    note: str = ""


@dataclass(frozen=True)
class Episode:
    """A task given to a principal, and the calls made inside it."""

    scenario: str
    principal: Principal
    task: dict[str, Any]
    steps: tuple[Step, ...]


# -- the simulated third-party services ---------------------------------------------------

SERVICES: dict[str, dict[str, Any]] = {
    "changes.example": {
        "/api/changes/CHG-2291": {"status": "open", "title": "payments 2.3"},
        "/api/changes/CHG-2200": {"status": "closed", "title": "payments 2.2"},
    },
    "posture.example": {
        "/v1/identities/svc%3Areporting": {"compliant": True, "finding": "none"},
        "/v1/identities/svc%3Areporting-laptop": {
            "compliant": False,
            "finding": "disk encryption off",
        },
    },
    "tickets.example": {
        "/api/tickets/ACC-77": {"status": "approved", "apis": ["billing"]},
        "/api/tickets/ACC-78": {"status": "approved", "apis": ["billing"]},
    },
    "telemetry.example": {
        "/v1/secrets/vault%3Aci%2Fdeploy-key/usage": {"consumers": 9, "days_since_last_use": 41},
        "/v1/secrets/vault%3Asvc%2Fpayments/usage": {"consumers": 14, "days_since_last_use": 0},
    },
    "vendor-risk.example": {
        "/v1/vendors/calendly": {"trust": "trusted", "risk_score": 12, "note": "SOC2"},
        "/v1/vendors/docsign": {"trust": "trusted", "risk_score": 35, "note": "SOC2"},
        "/v1/vendors/freepdf": {"trust": "untrusted", "risk_score": 90, "note": "breach list"},
    },
}


def simulated_services(request: httpx.Request) -> httpx.Response:
    """Answer like the services would; unknown paths are 404, telemetry for legacy is down."""
    answers = SERVICES.get(request.url.host, {})
    path = request.url.raw_path.decode().split("?")[0]
    if path in answers:
        return httpx.Response(
            200,
            content=json.dumps(answers[path]).encode(),
            headers={"Content-Type": "application/json"},
        )
    if request.url.host == "telemetry.example":
        return httpx.Response(503)
    return httpx.Response(404)


def simulated_client() -> httpx.Client:
    """An ``httpx.Client`` whose transport is `simulated_services` (no network)."""
    return httpx.Client(transport=httpx.MockTransport(simulated_services))


# -- the tools -----------------------------------------------------------------------------


def build_tools(
    guard: Guard, issuer: CredentialIssuer | None = None, minted: list[Credential] | None = None
) -> dict[str, Callable[..., Any]]:
    """The demo's tools, guarded. Their bodies describe what they would do; the deploy and
    API tools check their credential as the real resource would (and keep it in ``minted``)."""

    def checked(credential: Credential | None, audience: str, **scope: Any) -> str:
        if credential is None or issuer is None:
            return "no credential"
        if minted is not None:
            minted.append(credential)
        verify_credential(credential.token, key=issuer.public_key_pem, audience=audience, **scope)
        return f"with {credential.id[:13]}…, verified"

    @guard.tool(intent="deploy", resource="service", environment_arg="environment")
    def deploy_release(
        service: str, version: str, environment: str, credential: Credential | None = None
    ) -> str:
        """Deploy a released version of a service to an environment."""
        token = checked(credential, "deploy-api", environment=environment, tool="deploy_release")
        return f"deployed {service} {version} to {environment} ({token})"

    @guard.tool(intent="issue_credential", resource="api")
    def issue_api_credentials(
        api: str, ttl_minutes: int, credential: Credential | None = None
    ) -> str:
        """Issue credentials for an internal API to the requesting identity."""
        token = checked(credential, "internal-api")
        return f"issued {api} credentials for {ttl_minutes} minutes ({token})"

    @guard.tool(intent="rotate_secret", resource="secret")
    def rotate_secret(secret_id: str) -> str:
        """Rotate a secret in the vault and roll it out to its consumers."""
        return f"rotated {secret_id}"

    @guard.tool(intent="purchase", resource="order", destinations=["vendor_url"])
    def buy_item(item: str, amount: float, vendor_url: str) -> str:
        """Buy an item from a supplier's shop."""
        return f"ordered {item} for {amount} from {vendor_url}"

    @guard.tool(intent="create_record", resource="crm.customer", writes=["pii"])
    def create_customer_record(name: str, email: str) -> str:
        """Create a customer record in the CRM."""
        return f"created record for {name} <{email}>"

    @guard.tool(intent="approve_integration", resource="integration", destinations=["callback_url"])
    def approve_integration(vendor: str, scopes: list[str], callback_url: str) -> str:
        """Connect a third-party vendor's app to the workspace with the given scopes."""
        return f"connected {vendor} with {', '.join(scopes)}, callbacks to {callback_url}"

    tools: list[Callable[..., Any]] = [
        deploy_release,
        issue_api_credentials,
        rotate_secret,
        buy_item,
        create_customer_record,
        approve_integration,
    ]
    return {t.__name__: t for t in tools}


def demo_approver(tool: str) -> tuple[bool, str]:
    """The demo's stand-in for a human: approves, except purchases (the budget is frozen)."""
    if tool == "buy_item":
        return False, "the purchasing budget is frozen this quarter"
    return True, "looks right"


# -- the episodes --------------------------------------------------------------------------

_RELEASE_BOT = Principal(
    id="agent:release-bot",
    kind="agent",
    roles=("deployer",),
    delegation=(
        Principal(id="svc:ci-pipeline", kind="service"),
        Principal(id="human:alice", kind="human"),
    ),
)
_REPORTING = Principal(id="svc:reporting", kind="service", roles=("api-consumer:billing",))
_LAPTOP = Principal(id="svc:reporting-laptop", kind="service", roles=("api-consumer:billing",))
_REMEDIATOR = Principal(id="agent:remediator", kind="agent", roles=("remediator",))
_BUYER = Principal(
    id="agent:buyer",
    kind="agent",
    roles=("buyer",),
    delegation=(Principal(id="human:bob", kind="human"),),
)
_CRM = Principal(id="agent:crm", kind="agent", roles=("crm-writer",))
_INTEGRATOR = Principal(id="agent:it-helper", kind="agent", roles=("integrator",))
_SHOP = "https://acme.example/shop"
_PAYMENTS = {"service": "payments", "version": "2.3.0"}


def _release(environment: str, ticket: str | None = None) -> dict[str, Any]:
    return {
        "goal": f"release payments 2.3 to {environment}",
        "intents": ["deploy"],
        "environment": environment,
        "ticket": ticket,
        "attributes": {"services": ["payments"]},
    }


def _rotation(goal: str) -> dict[str, Any]:
    return {"goal": goal, "intents": ["rotate_secret"]}


def _vendor(scopes: list[str]) -> dict[str, Any]:
    return {
        "goal": "connect a vendor app",
        "intents": ["approve_integration"],
        "attributes": {"requested_scopes": scopes},
    }


def _integration(vendor: str, scopes: list[str], expect: str, note: str = "") -> Step:
    args = {"vendor": vendor, "scopes": scopes, "callback_url": f"https://{vendor}.example/hook"}
    return Step("approve_integration", args, expect, note)


EPISODES: tuple[Episode, ...] = (
    Episode(
        "1 deploy",
        _RELEASE_BOT,
        _release("staging"),
        (
            Step(
                "deploy_release",
                {**_PAYMENTS, "environment": "staging"},
                "allow",
                "10-minute deploy token",
            ),
            Step(
                "deploy_release",
                {**_PAYMENTS, "environment": "prod"},
                "deny",
                "target outside the task",
            ),
        ),
    ),
    Episode(
        "1 deploy",
        _RELEASE_BOT,
        _release("prod", "CHG-2291"),
        (Step("deploy_release", {**_PAYMENTS, "environment": "prod"}, APPROVED, "open change"),),
    ),
    Episode(
        "1 deploy",
        _RELEASE_BOT,
        _release("prod", "CHG-2200"),
        (Step("deploy_release", {**_PAYMENTS, "environment": "prod"}, "deny", "closed change"),),
    ),
    Episode(
        "2 api access",
        _REPORTING,
        {"goal": "monthly billing report", "ticket": "ACC-77"},
        (
            Step("issue_api_credentials", {"api": "billing", "ttl_minutes": 15}, "allow"),
            Step(
                "issue_api_credentials",
                {"api": "payroll", "ttl_minutes": 15},
                "deny",
                "API not on the ticket",
            ),
        ),
    ),
    Episode(
        "2 api access",
        _LAPTOP,
        {"goal": "monthly billing report", "ticket": "ACC-78"},
        (
            Step(
                "issue_api_credentials",
                {"api": "billing", "ttl_minutes": 15},
                "deny",
                "posture not compliant",
            ),
        ),
    ),
    Episode(
        "3 rotate secret",
        _REMEDIATOR,
        _rotation("remediate an exposed CI key"),
        (Step("rotate_secret", {"secret_id": "vault:ci/deploy-key"}, "allow", "unused 41 days"),),
    ),
    Episode(
        "3 rotate secret",
        _REMEDIATOR,
        _rotation("remediate an exposed payments key"),
        (Step("rotate_secret", {"secret_id": "vault:svc/payments"}, APPROVED, "14 consumers"),),
    ),
    Episode(
        "3 rotate secret",
        _REMEDIATOR,
        _rotation("remediate an exposed legacy key"),
        (Step("rotate_secret", {"secret_id": "vault:svc/legacy"}, "deny", "telemetry down"),),
    ),
    Episode(
        "4 purchase",
        _BUYER,
        {"goal": "restock office chairs", "intents": ["purchase"], "ticket": "OPS-1234"},
        (
            Step("buy_item", {"item": "chair", "amount": 120.0, "vendor_url": _SHOP}, "allow"),
            Step(
                "buy_item",
                {"item": "gpu", "amount": 9000.0, "vendor_url": "https://unknown.example/cart"},
                "deny",
                "injected by a web page",
            ),
            Step("buy_item", {"item": "desk", "amount": 900.0, "vendor_url": _SHOP}, REJECTED),
            Step(
                "buy_item",
                {"item": "chair", "amount": "400", "vendor_url": _SHOP},
                "deny",
                "amount as a string",
            ),
            Step(
                "buy_іtem",
                {"item": "chair", "amount": 1.0, "vendor_url": _SHOP},
                "deny",
                "look-alike tool name",
            ),
            Step(
                "create_customer_record",
                {"name": "Ada", "email": "ada@customer.example"},
                "deny",
                "intent outside the task",
            ),
        ),
    ),
    Episode(
        "4 record",
        _CRM,
        {"goal": "onboard a new customer", "intents": ["create_record"]},
        (
            Step(
                "create_customer_record",
                {"name": "Ada Lovelace", "email": "ada@customer.example"},
                "allow",
            ),
        ),
    ),
    Episode(
        "5 integration",
        _INTEGRATOR,
        _vendor(["calendar:read"]),
        (_integration("calendly", ["calendar:read"], "allow", "low risk"),),
    ),
    Episode(
        "5 integration",
        _INTEGRATOR,
        _vendor(["drive:write"]),
        (_integration("docsign", ["drive:write"], APPROVED, "medium risk"),),
    ),
    Episode(
        "5 integration",
        _INTEGRATOR,
        _vendor(["drive:read"]),
        (_integration("freepdf", ["drive:read"], "deny", "untrusted vendor"),),
    ),
    Episode(
        "5 integration",
        _INTEGRATOR,
        _vendor(["calendar:read"]),
        (_integration("calendly", ["calendar:read", "mail:read"], "deny", "scope beyond request"),),
    ),
)
