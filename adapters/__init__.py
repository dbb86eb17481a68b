"""Framework adapters; each needs its extra (e.g. ``outcome-guardrail[langchain]``)."""
