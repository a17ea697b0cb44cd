"""Real parties: the launcher starts N party processes and a dealer on loopback (jax.distributed, gloo).

``tests/processes_check.py`` is the script every process runs; see its docstring for what it checks
(share_from, reveal(to=), mul, matmul, a comparison, relu under jit, one encrypted training step, saved
shares resumed on the mesh, and that the dealer receives nothing). The fault tests: a party killed after sharing (the others stop on their
own, with an error, within 60 s); a coordinator that cannot be reached; a process missing at the start; and
processes started with different ``--parties``: every process exits non-zero, within its ``--timeout``, with
an error that says why. (Started directly with ``python -m sjax.parallel.party``, as on several hosts.)
"""

from __future__ import annotations

import os
import pathlib
import re
import socket
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
def test_parties_as_processes(n, tmp_path):
    result = _launch(n, "--storage-dir", str(tmp_path))
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    names = [f"party {i}" for i in range(n)] + ["dealer"]
    for name in names:
        assert f"[{name}] ALL OK" in output, output[-4000:]
        checks = ("placement", "reveal_to", "mul", "matmul", "lt", "relu_jit", "train_step_w", "save_load_place")
        for check in (*checks, "resumed_step_w"):
            assert re.search(rf"\[{name}\] CHECK {check} OK", output), (name, check, output[-4000:])
    assert output.count("(dealer received nothing)") >= 7
    for i in range(n):
        assert f"[party {i}] CHECK foreign_file_refused OK" in output
    assert not list(tmp_path.iterdir()), "each process removes its own file"


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


# -- joining faults: processes started one by one, as on several hosts ------------------------------------


def _unused_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_parties(specs, script, *, timeout: int, port: int | None = None):
    """Starts ``python -m sjax.parallel.party`` once per ``(rank, n_parties)``; returns their results.

    Each process must end on its own: a process still running 60 s after its ``--timeout`` fails the test.
    Returns ``[(rank, n_parties, returncode, stderr)]`` and the seconds until the last one ended.
    """
    coordinator = f"127.0.0.1:{port or _unused_port()}"
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONUNBUFFERED="1")
    env["XLA_FLAGS"] = " ".join(f for f in env.get("XLA_FLAGS", "").split() if "device_count" not in f)
    started = time.monotonic()
    children = []
    for rank, n in specs:
        command = [
            sys.executable, "-m", "sjax.parallel.party", "--coordinator", coordinator, "--parties", str(n),
            "--rank", str(rank), "--timeout", str(timeout), "--heartbeat-timeout", "5", str(script),
        ]  # fmt: skip
        child = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        children.append((rank, n, child))
    results = []
    try:
        for rank, n, child in children:
            left = max(started + timeout + 60 - time.monotonic(), 1)
            _, stderr = child.communicate(timeout=left)
            results.append((rank, n, child.returncode, stderr))
    finally:
        for _, _, child in children:
            if child.poll() is None:
                child.kill()
    return results, time.monotonic() - started


@pytest.fixture
def script(tmp_path):
    path = tmp_path / "reached.py"
    path.write_text("print('SCRIPT RAN', flush=True)\n")
    return path


@pytest.mark.parametrize("rank", ["1", "dealer"])
def test_an_unreachable_coordinator_is_named_within_the_timeout(script, rank):
    port = _unused_port()  # nothing listens there: party 0 was never started
    (result,), seconds = _start_parties([(rank, 2)], script, timeout=5, port=port)
    _, _, code, stderr = result
    assert code == 3, stderr[-3000:]
    assert f"cannot reach the coordinator at 127.0.0.1:{port} within 5 s" in stderr, stderr[-3000:]
    assert "Connection refused" in stderr and "SCRIPT RAN" not in stderr
    assert seconds < 30, seconds  # 5 s of retries, plus Python and JAX start-up


def test_a_missing_process_stops_the_others_at_the_timeout(script):
    # Party 0 serves the coordinator, so it is reachable; the dealer never starts.
    results, seconds = _start_parties([(0, 2), (1, 2)], script, timeout=8)
    for rank, _, code, stderr in results:
        assert code == 3, (rank, stderr[-3000:])
        assert "did not all join at the coordinator 127.0.0.1:" in stderr, stderr[-3000:]
        assert "within 8 s" in stderr
        assert "with --parties 2" in stderr
    assert seconds < 40, seconds


@pytest.mark.parametrize(
    "specs",
    [
        # Party 1 believes in 3 parties (and a dealer of rank 3) among a 2-party run.
        [(0, 2), (1, 3), ("dealer", 2)],
        # Party 1 believes in 2 parties among a 3-party run.
        [(0, 3), (1, 2), (2, 3), ("dealer", 3)],
    ],
    ids=["one-party-more", "one-party-fewer"],
)
def test_a_party_with_another_party_count_stops_every_process(script, specs):
    results, seconds = _start_parties(specs, script, timeout=30)
    majority = specs[0][1]
    odd = next(n for _, n in specs if n != majority)
    for rank, n, code, stderr in results:
        assert code == 3, (rank, n, stderr[-3000:])
        assert "the processes disagree on the number of parties" in stderr, (rank, stderr[-3000:])
        assert f"this process was started with --parties {n}," in stderr, (rank, stderr[-3000:])
        other = majority if n == odd else odd
        assert f"with --parties {other}." in stderr, (rank, stderr[-3000:])
        assert "SCRIPT RAN" not in stderr
    assert seconds < 40, seconds  # the counts are compared as soon as every process has joined


def test_a_dealer_whose_slot_does_not_exist_ends_every_process(script):
    # A dealer started with --parties 3 takes slot 3, which a 2-party coordinator does not have: JAX's client
    # refuses it at registration (it aborts that process), and the two parties stop at their timeout.
    results, seconds = _start_parties([(0, 2), (1, 2), ("dealer", 3)], script, timeout=8)
    for rank, n, code, stderr in results:
        assert code != 0, (rank, stderr[-3000:])
        if rank == "dealer":
            assert "Unexpected task registered with task=3" in stderr, stderr[-3000:]
        else:
            assert code == 3 and "did not all join at the coordinator" in stderr, (rank, stderr[-3000:])
    assert seconds < 40, seconds
