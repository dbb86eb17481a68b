"""outcome-guardrail: an outcome policy between AI agents and every tool they call.

Every call is intercepted, its intent, data boundary and logging requirements are extracted,
the outcome policy allows, denies or asks a human, and the decision is recorded as
OpenTelemetry spans. Default deny, fail closed.
"""

from guardrail._confirm import (
    Approval,
    CallbackConfirmer,
    ConfirmationRequest,
    Confirmer,
    ConsoleConfirmer,
)
from guardrail._errors import (
    ConfigurationError,
    GuardrailError,
    PolicyError,
    PolicyProblem,
    ToolCallDenied,
)
from guardrail._guard import Guard
from guardrail._model import (
    Boundary,
    Decision,
    Effect,
    Facts,
    Finding,
    LoggingRequirement,
    Principal,
    Task,
    ToolCall,
)
from guardrail._policy import Example, OutcomePolicy, Rule, ToolSpec, load_policy, parse_policy
from guardrail._task import TaskScope, current_task
from guardrail._version import __version__
from guardrail.credentials import (
    Credential,
    CredentialError,
    CredentialGrant,
    CredentialIssuer,
    ReplayCache,
    current_credential,
    verify_credential,
)

__all__ = [
    "Approval",
    "Boundary",
    "CallbackConfirmer",
    "ConfigurationError",
    "ConfirmationRequest",
    "Confirmer",
    "ConsoleConfirmer",
    "Credential",
    "CredentialError",
    "CredentialGrant",
    "CredentialIssuer",
    "Decision",
    "Effect",
    "Example",
    "Facts",
    "Finding",
    "Guard",
    "GuardrailError",
    "LoggingRequirement",
    "OutcomePolicy",
    "PolicyError",
    "PolicyProblem",
    "Principal",
    "ReplayCache",
    "Rule",
    "Task",
    "TaskScope",
    "ToolCall",
    "ToolCallDenied",
    "ToolSpec",
    "__version__",
    "current_credential",
    "current_task",
    "load_policy",
    "parse_policy",
    "verify_credential",
]
