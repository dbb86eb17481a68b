"""The wheel ships guardrail, guardrail.adapters and guardrail.policies, and works installed."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

from tests.conftest import ROOT


def test_wheel_installs_into_a_clean_venv_and_imports(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    wheel = next(dist.glob("outcome_guardrail-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {
        "guardrail/__init__.py",
        "guardrail/py.typed",
        "guardrail/adapters/__init__.py",
        "guardrail/policies/__init__.py",
        "guardrail/policies/procurement.yaml",
    } <= names
    assert not any(n.startswith(("adapters/", "policies/", "tests/")) for n in names)

    env = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env)
    python = env / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", str(wheel)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    # dependencies come from the test environment; the package itself only from the wheel
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    )
    Path(site.stdout.strip(), "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    probe = (
        "import guardrail, guardrail.adapters\n"
        "from guardrail import load_policy\n"
        "from guardrail.policies import policy_path\n"
        "p = load_policy(policy_path())\n"
        "print(guardrail.__file__, len(p.rules))\n"
    )
    done = subprocess.run(
        [str(python), "-c", probe], check=True, capture_output=True, text=True, cwd=tmp_path
    )
    location, rules = done.stdout.split()
    assert location.startswith(str(env)) and int(rules) > 0
    check = subprocess.run(
        [str(env / "bin" / "guardrail"), "check", "--help"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert check.returncode == 0 and "Validate policy files" in check.stdout
