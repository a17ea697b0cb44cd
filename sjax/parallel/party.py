"""Runs a script as one party (or the dealer) of a processes runner.

On each host, for parties ``0 .. N-1`` and the dealer::

    python -m sjax.parallel.party --coordinator HOST:PORT --parties N --rank I SCRIPT [ARGS...]
    python -m sjax.parallel.party --coordinator HOST:PORT --parties N --rank dealer SCRIPT [ARGS...]

``HOST:PORT`` is where party 0's process serves JAX's coordination service (every process names the same
one). The process joins the others (:func:`sjax.parallel.processes.init`), then runs ``SCRIPT`` as
``__main__`` with ``sys.argv = [SCRIPT, *ARGS]``. Inside it, sjax calls work as in simulation, on shares
placed across the processes; :func:`sjax.parallel.party_index` says which party this process is.

Exit status: the script's (0 on success); 1 with the error on stderr if it raised; 2 for bad arguments;
3 when joining failed, within ``--timeout`` seconds and with the reason on stderr: the coordinator cannot
be reached, not every process joined, or the processes were started with different ``--parties`` (every
process that joined then fails, naming both counts). If another process dies, JAX's coordination service
notices within the heartbeat timeout and this process stops with an error instead of waiting for it.
"""

from __future__ import annotations

import argparse
import runpy
import sys
import traceback


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m sjax.parallel.party", description="Run SCRIPT as one party of an sjax computation."
    )
    parser.add_argument("--coordinator", required=True, help="HOST:PORT of the coordination service (party 0)")
    parser.add_argument("--parties", type=int, required=True, help="number of parties N (the dealer not counted)")
    parser.add_argument("--rank", required=True, help="this party's index 0..N-1, or 'dealer'")
    parser.add_argument(
        "--timeout", type=int, default=60, help="seconds to wait for the coordinator and for every process"
    )
    parser.add_argument(
        "--heartbeat-timeout", type=int, default=20, help="seconds without a heartbeat before a process counts as dead"
    )
    parser.add_argument("script", help="the Python script every party runs")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="arguments for the script")
    options = parser.parse_args(argv)
    if options.parties < 2:
        parser.error(f"--parties must be at least 2, got {options.parties}")
    if options.timeout <= 0:
        parser.error(f"--timeout must be a positive number of seconds, got {options.timeout}")
    if options.rank == "dealer":
        options.rank = options.parties
    else:
        try:
            options.rank = int(options.rank)
        except ValueError:
            parser.error(f"--rank must be an integer or 'dealer', got {options.rank!r}")
        if not 0 <= options.rank < options.parties:
            parser.error(f"--rank must be in [0, {options.parties}) or 'dealer', got {options.rank}")
    return options


def main(argv: list[str] | None = None) -> int:
    options = _parse(sys.argv[1:] if argv is None else argv)
    from sjax.parallel import processes

    try:
        processes.init(
            options.coordinator,
            options.parties,
            options.rank,
            timeout_s=options.timeout,
            heartbeat_timeout_s=options.heartbeat_timeout,
        )
    except (RuntimeError, ValueError) as error:
        print(f"sjax.parallel.party: {error}", file=sys.stderr, flush=True)
        return 3
    sys.argv = [options.script, *options.args]
    status = 0
    try:
        runpy.run_path(options.script, run_name="__main__")
    except SystemExit as exit_:
        code = exit_.code
        status = code if isinstance(code, int) else (0 if code is None else 1)
        if not isinstance(code, int) and code is not None:
            print(code, file=sys.stderr)
    except BaseException:  # noqa: BLE001  (report anything the script raised, then fail)
        traceback.print_exc()
        status = 1
    sys.stdout.flush()
    sys.stderr.flush()
    if status == 0:
        processes.shutdown()
    return status


if __name__ == "__main__":
    # os._exit on failure: a clean interpreter exit would wait at jax.distributed's shutdown barrier for
    # processes that may be gone.
    code = main()
    if code:
        import os

        os._exit(code)
    sys.exit(0)
