"""Real parties: the launcher starts N party processes and a dealer on loopback (jax.distributed, gloo).

``tests/processes_check.py`` is the script every process runs; see its docstring for what it checks
(share_from, reveal(to=), mul, matmul, a comparison, relu under jit, one encrypted training step, and
that the dealer receives nothing). The fault test kills a party after sharing and checks that the others
stop on their own, with an error, within 60 s.
"""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
CHECK = ROOT / "tests" / "processes_check.py"

pytestmark = pytest.mark.slow


def _launch(n: int, *script_args: str, grace: float = 30.0, timeout: float = 600) -> subprocess.CompletedProcess:
    command = [
        sys.executable, "-m", "sjax.parallel.launch", "--parties", str(n), "--grace", str(grace),
        "--heartbeat-timeout", "10", str(CHECK), *script_args,
    ]  # fmt: skip
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("n", [2, 3])
def test_parties_as_processes(n):
    result = _launch(n)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    names = [f"party {i}" for i in range(n)] + ["dealer"]
    for name in names:
        assert f"[{name}] ALL OK" in output, output[-4000:]
        for check in ("placement", "reveal_to", "mul", "matmul", "lt", "relu_jit", "train_step_w"):
            assert re.search(rf"\[{name}\] CHECK {check} OK", output), (name, check, output[-4000:])
    assert output.count("(dealer received nothing)") >= 6


def test_launcher_prefixes_and_fails_on_a_bad_script(tmp_path):
    script = tmp_path / "boom.py"
    script.write_text("import sjax\nprint('hello')\nraise SystemExit(7)\n")
    result = subprocess.run(
        [sys.executable, "-m", "sjax.parallel.launch", "--parties", "2", "--grace", "5", str(script)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 7, result.stdout + result.stderr
    for name in ("party 0", "party 1", "dealer"):
        assert f"[{name}] hello" in result.stdout


def test_a_dead_party_stops_the_others_within_60_s():
    # A long grace: the launcher must not be what stops them; each surviving process stops on its own.
    started = time.monotonic()
    result = _launch(3, "--die-after-share", "1", grace=300)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-4000:]
    assert "[party 1] dying now" in output
    assert "[launch] stopping" not in output, "the launcher had to kill a process: it hung"
    assert "ALL OK" not in output
    # The survivors started a protocol that needs party 1 (after a 2 s pause) and ended with an error.
    assert time.monotonic() - started < 60 + 60, output[-4000:]  # plus start-up and compile
    for name in ("party 0", "party 2", "dealer"):
        assert re.search(rf"\[{name}\].*(distributed service|coordination|Terminating|Error|error)", output), (
            name,
            output[-4000:],
        )
