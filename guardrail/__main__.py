"""``python -m guardrail`` is the ``guardrail`` command."""

from guardrail._cli import main

main()
