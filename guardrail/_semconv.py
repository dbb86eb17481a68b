"""Every span and attribute name guardrail writes, in one place.

The GenAI names follow the OpenTelemetry GenAI semantic conventions (execute_tool span),
which are still marked Development; the ``guardrail.*`` names are ours.
"""

from typing import Final

TRACER_NAME: Final = "guardrail"

SPAN_TOOL: Final = "execute_tool {tool}"
SPAN_DECISION: Final = "guardrail.decision {tool}"
SPAN_TASK: Final = "guardrail.task"

GEN_AI_OPERATION_NAME: Final = "gen_ai.operation.name"
GEN_AI_TOOL_NAME: Final = "gen_ai.tool.name"
GEN_AI_TOOL_CALL_ID: Final = "gen_ai.tool.call.id"
GEN_AI_TOOL_DESCRIPTION: Final = "gen_ai.tool.description"
GEN_AI_TOOL_TYPE: Final = "gen_ai.tool.type"
GEN_AI_TOOL_CALL_ARGUMENTS: Final = "gen_ai.tool.call.arguments"
ERROR_TYPE: Final = "error.type"
EXECUTE_TOOL: Final = "execute_tool"

DECISION: Final = "guardrail.decision"
DECISION_ID: Final = "guardrail.decision.id"
SEQUENCE: Final = "guardrail.sequence"
RULE_IDS: Final = "guardrail.rule.ids"
REASON: Final = "guardrail.reason"
CONTROLS: Final = "guardrail.controls"
ERRORS: Final = "guardrail.errors"
POLICY_NAME: Final = "guardrail.policy.name"
POLICY_VERSION: Final = "guardrail.policy.version"
POLICY_DIGEST: Final = "guardrail.policy.digest"
INTENT: Final = "guardrail.intent"
INTENT_SOURCE: Final = "guardrail.intent.source"
RESOURCE: Final = "guardrail.resource"
BOUNDARY_DATA_CLASSES: Final = "guardrail.boundary.data_classes"
BOUNDARY_DESTINATIONS: Final = "guardrail.boundary.destination_hosts"
BOUNDARY_EXTERNAL_HOSTS: Final = "guardrail.boundary.external_hosts"
BOUNDARY_ENVIRONMENT: Final = "guardrail.boundary.environment"
BOUNDARY_TENANT: Final = "guardrail.boundary.tenant"
PRINCIPAL_ID: Final = "guardrail.principal.id"
PRINCIPAL_KIND: Final = "guardrail.principal.kind"
PRINCIPAL_ROLES: Final = "guardrail.principal.roles"
PRINCIPAL_CHAIN: Final = "guardrail.principal.chain"
TASK_ID: Final = "guardrail.task.id"
TASK_GOAL: Final = "guardrail.task.goal"
TASK_INTENTS: Final = "guardrail.task.intents"
TASK_ENVIRONMENT: Final = "guardrail.task.environment"
TASK_TICKET: Final = "guardrail.task.ticket"
ARGS_DIGEST: Final = "guardrail.args.digest"
ARGS_NAMES: Final = "guardrail.args.names"
LOGGING_LEVEL: Final = "guardrail.logging.level"
LOGGING_REDACTED: Final = "guardrail.logging.redacted"
APPROVAL_ID: Final = "guardrail.approval.id"
APPROVER: Final = "guardrail.approval.approver"
OUTCOME: Final = "guardrail.outcome"
NESTED: Final = "guardrail.nested"

EVENT_CONFIRM_REQUESTED: Final = "guardrail.confirmation.requested"
EVENT_CONFIRM_ANSWERED: Final = "guardrail.confirmation.answered"

ERROR_DENIED: Final = "guardrail.denied"
