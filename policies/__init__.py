"""Policies shipped with outcome-guardrail, one per scenario. Use `policy_path`."""
