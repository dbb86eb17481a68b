"""Policies shipped with outcome-guardrail, one per scenario of the mission.

``policy_path()`` is the directory (all five compose into one policy);
``policy_path("procurement")`` is one file.
"""

from pathlib import Path

_HERE = Path(__file__).resolve().parent
NAMES = ("api-access", "deployments", "integrations", "procurement", "secret-rotation")


def policy_path(name: str | None = None) -> Path:
    """Path of the bundled policy directory, or of one bundled policy file by name."""
    if name is None:
        return _HERE
    if name not in NAMES:
        raise ValueError(f"no bundled policy '{name}'; bundled: {', '.join(NAMES)}")
    return _HERE / f"{name}.yaml"


__all__ = ["NAMES", "policy_path"]
