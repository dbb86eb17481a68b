"""What durable evidence costs: a guarded call with the spool on against off, and how fast the
shipper drains a spool into a loopback OTLP/HTTP receiver.

Run: python benchmarks/evidence.py [--quick]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.overhead import BUYER, measure
from guardrail import Guard, ToolCall, parse_policy
from guardrail.shipping import Shipper
from guardrail.spool import Spool
from tests.otlp_receiver import Receiver

POLICY = """
apiVersion: guardrail/v1
kind: OutcomePolicy
metadata: {name: bench}
tools: {pay: {intent: purchase}}
rules:
  - id: pay
    intent: purchase
    when: args.amount <= 500.0
    effect: allow
    logging: {level: full, durable: DURABLE}
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    n = 300 if parser.parse_args().quick else 3000
    call = ToolCall("pay", {"amount": 12.0, "memo": "office chairs"})
    with tempfile.TemporaryDirectory() as tmp:
        off = Guard(parse_policy(POLICY.replace("DURABLE", "false")))
        spool = Spool(Path(tmp) / "spool.sqlite", max_pending=10**7)
        on = Guard(parse_policy(POLICY.replace("DURABLE", "true")), spool=spool)
        plain = measure(lambda: off.execute(call, lambda _: "paid", principal=BUYER), n)
        durable = measure(lambda: on.execute(call, lambda _: "paid", principal=BUYER), n)
        print(f"guarded call, evidence off   median {plain[0]:8.1f} us   p99 {plain[1]:8.1f} us")
        print(
            f"guarded call, spool on       median {durable[0]:8.1f} us   p99 {durable[1]:8.1f} us"
            f"   (+{durable[0] - plain[0]:.0f} us: two fsync'd commits, decision and outcome)"
        )
        pending = spool.count_pending()
        receiver = Receiver().start()
        try:
            shipper = Shipper(spool, OTLPSpanExporter(endpoint=receiver.endpoint), batch=512)
            start = time.perf_counter()
            assert shipper.flush(timeout_s=300)
            took = time.perf_counter() - start
        finally:
            receiver.stop()
        print(
            f"shipper: {pending} records to a loopback OTLP/HTTP receiver in {took:.2f} s "
            f"= {pending / took:,.0f} records/s"
        )
        spool.close()


if __name__ == "__main__":
    main()
