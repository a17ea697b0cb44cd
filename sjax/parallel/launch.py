"""Starts every party and the dealer of an sjax computation on this machine.

    python -m sjax.parallel.launch --parties N SCRIPT [ARGS...]

Runs ``N + 1`` processes of :mod:`sjax.parallel.party` (parties ``0 .. N-1`` and the dealer) that find
each other over loopback (JAX's coordination service on a free port, gloo collectives). Each line a
process prints is prefixed by who printed it (``[party 0]``, ``[dealer]``). The launcher exits with 0 when
every process succeeds; otherwise with the first failing status, after stopping the others: they get
``--grace`` seconds to notice (JAX's heartbeat) and are then terminated, so nothing hangs.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import threading
import time


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _pump(stream, prefix: str, out, lock: threading.Lock) -> None:
    for raw in iter(stream.readline, b""):
        line = raw.decode(errors="replace").rstrip("\n")
        with lock:
            out.write(f"{prefix} {line}\n")
            out.flush()
    stream.close()


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m sjax.parallel.launch", description="Run SCRIPT as N parties and a dealer on this machine."
    )
    parser.add_argument("--parties", type=int, required=True, help="number of parties N (at least 2)")
    parser.add_argument("--port", type=int, default=0, help="coordinator port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--timeout", type=int, default=60, help="seconds for every process to join")
    parser.add_argument("--heartbeat-timeout", type=int, default=20, help="seconds before a silent process is dead")
    parser.add_argument("--grace", type=float, default=30.0, help="seconds the others get to stop after a failure")
    parser.add_argument("script")
    parser.add_argument("args", nargs=argparse.REMAINDER)
    options = parser.parse_args(argv)
    if options.parties < 2:
        parser.error(f"--parties must be at least 2, got {options.parties}")
    if not os.path.isfile(options.script):
        parser.error(f"no such script: {options.script}")
    return options


def main(argv: list[str] | None = None) -> int:
    options = _parse(sys.argv[1:] if argv is None else argv)
    n = options.parties
    coordinator = f"127.0.0.1:{options.port or _free_port()}"
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONUNBUFFERED="1")
    # One CPU device per process: a device-count flag meant for the devices runner must not leak in.
    env["XLA_FLAGS"] = " ".join(
        f for f in env.get("XLA_FLAGS", "").split() if "force_host_platform_device_count" not in f
    )
    lock = threading.Lock()
    children: list[tuple[str, subprocess.Popen]] = []
    pumps = []
    for rank in range(n + 1):
        name = "dealer" if rank == n else f"party {rank}"
        command = [
            sys.executable, "-m", "sjax.parallel.party",
            "--coordinator", coordinator, "--parties", str(n), "--rank", "dealer" if rank == n else str(rank),
            "--timeout", str(options.timeout), "--heartbeat-timeout", str(options.heartbeat_timeout),
            options.script, *options.args,
        ]  # fmt: skip
        child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        children.append((name, child))
        for stream, out in ((child.stdout, sys.stdout), (child.stderr, sys.stderr)):
            pump = threading.Thread(target=_pump, args=(stream, f"[{name}]", out, lock), daemon=True)
            pump.start()
            pumps.append(pump)

    status = 0
    failed_at = None
    try:
        while True:
            running = [(name, c) for name, c in children if c.poll() is None]
            for name, child in children:
                code = child.returncode
                if code not in (None, 0) and status == 0:
                    status = code if code > 0 else 128 - code
                    failed_at = time.monotonic()
                    with lock:
                        print(
                            f"[launch] {name} failed (exit status {code}); the others get {options.grace:g} s "
                            "to stop",
                            file=sys.stderr,
                            flush=True,
                        )
            if not running:
                break
            if failed_at is not None and time.monotonic() - failed_at > options.grace:
                for name, child in running:
                    with lock:
                        print(f"[launch] stopping {name}", file=sys.stderr, flush=True)
                    child.kill()
            time.sleep(0.1)
    except KeyboardInterrupt:
        for _, child in children:
            child.kill()
        status = 130
    for pump in pumps:
        pump.join(timeout=5)
    return status


if __name__ == "__main__":
    sys.exit(main())
