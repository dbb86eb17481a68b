"""The five scenarios of the mission, scripted as an agent's tool calls.

Each episode is one task given to one principal; each step is a tool call the agent makes
inside it, with the outcome the bundled policies must produce. ``guardrail demo`` plays them;
the test suite plays them too and checks every expectation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from guardrail._guard import Guard
from guardrail._model import Principal

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


def build_tools(guard: Guard) -> dict[str, Callable[..., Any]]:
    """The demo's tools, guarded. Their bodies only describe what they would do."""

    @guard.tool(intent="deploy", resource="service", environment_arg="environment")
    def deploy_release(service: str, version: str, environment: str) -> str:
        """Deploy a released version of a service to an environment."""
        return f"deployed {service} {version} to {environment}"

    @guard.tool(intent="issue_credential", resource="api")
    def issue_api_credentials(api: str, ttl_minutes: int) -> str:
        """Issue credentials for an internal API to the requesting identity."""
        return f"issued {api} credentials for {ttl_minutes} minutes"

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


def _vendor(trust: str, risk: int, note: str, scopes: list[str]) -> dict[str, Any]:
    return {
        "goal": "connect a vendor app",
        "intents": ["approve_integration"],
        "attributes": {"requested_scopes": scopes},
        "context": {"vendor": {"trust": trust, "risk_score": risk, "note": note}},
    }


EPISODES: tuple[Episode, ...] = (
    Episode(
        "1 deploy",
        _RELEASE_BOT,
        {
            "goal": "release payments 2.3 to staging",
            "intents": ["deploy"],
            "environment": "staging",
            "attributes": {"services": ["payments"]},
        },
        (
            Step(
                "deploy_release",
                {"service": "payments", "version": "2.3.0", "environment": "staging"},
                "allow",
            ),
            Step(
                "deploy_release",
                {"service": "payments", "version": "2.3.0", "environment": "prod"},
                "deny",
                "target outside the task",
            ),
        ),
    ),
    Episode(
        "1 deploy",
        _RELEASE_BOT,
        {
            "goal": "release payments 2.3 to prod",
            "intents": ["deploy"],
            "environment": "prod",
            "ticket": "CHG-2291",
            "attributes": {"services": ["payments"]},
        },
        (
            Step(
                "deploy_release",
                {"service": "payments", "version": "2.3.0", "environment": "prod"},
                APPROVED,
            ),
        ),
    ),
    Episode(
        "2 api access",
        _REPORTING,
        {
            "goal": "monthly billing report",
            "ticket": "ACC-77",
            "context": {
                "posture": {"compliant": True, "finding": "none"},
                "ticket": {"status": "approved", "apis": ["billing"]},
            },
        },
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
        _REPORTING,
        {
            "goal": "monthly billing report",
            "ticket": "ACC-78",
            "context": {
                "posture": {"compliant": False, "finding": "disk encryption off"},
                "ticket": {"status": "approved", "apis": ["billing"]},
            },
        },
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
        {
            "goal": "remediate an exposed CI key",
            "intents": ["rotate_secret"],
            "context": {"telemetry": {"consumers": 9, "days_since_last_use": 41}},
        },
        (Step("rotate_secret", {"secret_id": "vault:ci/deploy-key"}, "allow"),),
    ),
    Episode(
        "3 rotate secret",
        _REMEDIATOR,
        {
            "goal": "remediate an exposed payments key",
            "intents": ["rotate_secret"],
            "context": {"telemetry": {"consumers": 14, "days_since_last_use": 0}},
        },
        (Step("rotate_secret", {"secret_id": "vault:svc/payments"}, APPROVED),),
    ),
    Episode(
        "3 rotate secret",
        _REMEDIATOR,
        {"goal": "remediate an exposed legacy key", "intents": ["rotate_secret"]},
        (Step("rotate_secret", {"secret_id": "vault:svc/legacy"}, "deny", "no usage telemetry"),),
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
        _vendor("trusted", 12, "SOC2", ["calendar:read"]),
        (
            Step(
                "approve_integration",
                {
                    "vendor": "calendly",
                    "scopes": ["calendar:read"],
                    "callback_url": "https://calendly.example/hook",
                },
                "allow",
            ),
        ),
    ),
    Episode(
        "5 integration",
        _INTEGRATOR,
        _vendor("trusted", 35, "SOC2", ["drive:write"]),
        (
            Step(
                "approve_integration",
                {
                    "vendor": "docsign",
                    "scopes": ["drive:write"],
                    "callback_url": "https://docsign.example/hook",
                },
                APPROVED,
            ),
        ),
    ),
    Episode(
        "5 integration",
        _INTEGRATOR,
        _vendor("untrusted", 90, "on a breach list", ["drive:read"]),
        (
            Step(
                "approve_integration",
                {
                    "vendor": "freepdf",
                    "scopes": ["drive:read"],
                    "callback_url": "https://freepdf.example/hook",
                },
                "deny",
            ),
        ),
    ),
)
