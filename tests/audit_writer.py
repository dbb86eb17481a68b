"""Makes durable decisions forever, printing each decision id once it is returned."""

from __future__ import annotations

import sys

sys.path.insert(0, ".")
from guardrail import Guard, Principal, ToolCall
from guardrail.spool import Spool
from tests.conftest import policy
from tests.test_audit import DURABLE

guard = Guard(
    policy(DURABLE),
    spool=Spool(sys.argv[1], stream="killed"),
    on_decision=lambda d: print(d.decision_id, flush=True),
)
principal = Principal(id="agent:buyer")
i = 0
while True:
    i += 1
    guard.execute(
        ToolCall("pay", {"amount": float(i % 400)}), lambda a: "paid", principal=principal
    )
