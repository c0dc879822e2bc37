"""README's commands stay true: the make targets exist and every `iotids ...` line names a real command with
real options."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from iotids.cli import _register, app

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()


def _code_lines() -> list[str]:
    blocks = re.findall(r"```sh\n(.*?)```", README, flags=re.S)
    return [line.split("#")[0].strip() for block in blocks for line in block.splitlines() if line.strip()]


def test_make_targets_exist() -> None:
    assert "make demo" in README and "make test" in README
    for target in ("demo", "test"):
        result = subprocess.run(["make", "-n", target], cwd=REPO, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
    assert "make test" in (REPO / ".ci" / "run").read_text()


def test_every_documented_command_exists() -> None:
    _register()
    runner = CliRunner()
    commands = [line for line in _code_lines() if line.startswith("iotids ")]
    assert commands, "README documents no iotids command"
    for line in commands:
        words = [w for w in shlex.split(line)[1:] if not w.startswith("-") and w.isidentifier()]
        path = words[:2] if words[:1] == ["data"] else words[:1]
        result = runner.invoke(app, [*path, "--help"], terminal_width=200)
        assert result.exit_code == 0, f"{line!r}: {result.output}"
        for option in re.findall(r"(?<![\w-])--[a-z][a-z-]*", line):
            assert option in result.output, f"{line!r}: {' '.join(path)} has no option {option}"


def test_python_dash_m_runs_the_cli() -> None:
    result = subprocess.run([sys.executable, "-m", "iotids", "--help"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "detect" in result.stdout and "train" in result.stdout
