"""Quickstart: three parties add, multiply and matrix-multiply secret values, revealing only the results.

Each step prints what it computed, its communication cost (rounds and bytes each party sends, read from the
trace by ``sjax.cost`` before anything runs) and its error against the same computation in plaintext JAX.

Run it with ``make demo`` or ``python examples/quickstart.py [--parties N] [--size M]``.
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

import sjax


def report(step: str, secret_result: jax.Array, plaintext: jax.Array, cost: sjax.Cost) -> None:
    error = float(np.max(np.abs(np.asarray(secret_result) - np.asarray(plaintext))))
    print(f"{step:<34} max |error| {error:9.2e}   {cost}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parties", type=int, default=3, help="number of parties (default 3)")
    parser.add_argument("--size", type=int, default=64, help="matrix size M for the M x M product")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    n, m = args.parties, args.size
    print(f"sjax {sjax.__version__} on {jax.default_backend()}: {n} parties, {m}x{m} matrices\n")
    data_key, *keys = jax.random.split(jax.random.key(args.seed), 8)
    a, b = jax.random.normal(data_key, (2, m, m), dtype=jnp.float64)

    # Two inputs, each split into n additive shares; each party's share alone is uniform noise.
    x = sjax.share(a, keys[0], n_parties=n)
    y = sjax.share(b, keys[1], n_parties=n)
    print(f"shared x and y: {x}")
    print(f"party 0's first share words: {np.asarray(x.shares[0].ravel()[:3])} (uniform, reveal nothing)\n")

    total = x + y
    report("x + y   (local)", sjax.reveal(total), a + b, sjax.cost(lambda u, v: u + v)(x, y))

    product = sjax.mul(x, y, keys[2])
    report("x * y   (Beaver triple)", sjax.reveal(product), a * b, sjax.cost(sjax.mul)(x, y, keys[3]))

    mm = sjax.matmul(x, y, keys[4])
    report("x @ y   (matrix triple)", sjax.reveal(mm), a @ b, sjax.cost(sjax.matmul)(x, y, keys[5]))

    # The same three steps as one jitted program: compiled once by XLA, run on shares, revealed at the end.
    @jax.jit
    def program(x, y, key):
        k1, k2 = jax.random.split(key)
        return sjax.matmul(sjax.mul(x, y, k1) + x, y, k2)

    start = time.perf_counter()
    compiled = program.lower(x, y, keys[6]).compile()
    compile_s = time.perf_counter() - start
    start = time.perf_counter()
    out = jax.block_until_ready(compiled(x, y, keys[6]))
    run_s = time.perf_counter() - start
    print()
    report("jit: (x * y + x) @ y", sjax.reveal(out), (a * b + a) @ b, sjax.cost(program)(x, y, keys[6]))
    print(f"{'':<34} compile {compile_s:.2f} s, run {run_s * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
