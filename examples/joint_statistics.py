"""Joint statistics of three organisations' private rows: mean, variance, correlation and a histogram.

Three hospitals each hold a private part of the breast-cancer data set that scikit-learn ships (its rows
split between them). Together they compute, over all rows, the mean and variance of four measurements,
their correlation matrix, and a histogram of the tumour radius; each learns these results and nothing
else. Run it as real parties, one process each and a dealer, on this machine::

    python -m sjax.parallel.launch --parties 3 examples/joint_statistics.py

or on three hosts (and a fourth for the dealer) with ``python -m sjax.parallel.party`` (see README.md).
Without a launcher it runs simulated, every party in this process.

What is revealed: the results above, and the public facts every party knows in advance (how many rows each
party holds, the column names, the histogram's bin edges). Each party's rows never leave its process: it
masks them with seeds it shares pairwise with each other party (``sjax.share_from``), so nothing is sent.
The printed check against plaintext uses the whole data set, which this demonstration loads everywhere;
a real party would not have it.
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np
from sklearn import datasets

import sjax
from sjax import parallel

COLUMNS = [0, 1, 2, 3]  # mean radius, mean texture, mean perimeter, mean area
SCALES = np.array([10.0, 10.0, 100.0, 1000.0])  # each column's order of magnitude (public, from the units)
# Largest error against plaintext, |sjax - plain| / max(1, |plain|), that the example accepts per statistic.
TOLERANCES = {"mean": 1e-3, "variance": 1e-2, "correlation": 2e-4, "histogram": 0}
EDGES = np.array([6.0, 10.0, 12.0, 14.0, 16.0, 18.0, 20.0, 30.0])  # radius bins (public)


def party_rows(n_rows: int, n_parties: int) -> list[slice]:
    """Which rows each party holds (public): contiguous blocks of nearly equal size."""
    bounds = np.linspace(0, n_rows, n_parties + 1).round().astype(int)
    return [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:])]


def joint_statistics(x: sjax.ArithShare, key: jax.Array) -> dict[str, sjax.ArithShare]:
    """Shares of the statistics of the rows of ``x`` (``[rows, columns]``).

    Cost: a handful of products (the centred Gram matrix is one matmul) and one comparison per value and
    bin edge; values must stay inside the fixed-point range (|x| < 2^47 for 16 bits; the centred products
    here stay below 1e9, where truncation is exact).
    """
    k = iter(jax.random.split(key, 16))
    rows = x.shape[0]
    mean = sjax.mean(x, next(k), axis=0)
    centred = x - mean  # the mean broadcasts over the rows: local
    variance = sjax.mean(sjax.square(centred, next(k)), next(k), axis=0)
    # Correlation is scale-free: bring each column near 1 by its public order of magnitude first, so that
    # 1/sd keeps its significant digits in fixed point; then standardise and take one Gram matrix.
    scaled = sjax.mul(centred, 1.0 / SCALES, next(k))
    inv_sd = sjax.rsqrt(sjax.mean(sjax.square(scaled, next(k)), next(k), axis=0), next(k))
    standard = sjax.mul(scaled, inv_sd, next(k))
    correlation = sjax.mul(sjax.matmul(standard.T, standard, next(k)), 1.0 / rows, next(k))
    radius = x[:, 0].reshape(rows, 1)
    at_least = sjax.ge(radius, EDGES.reshape(1, -1), next(k))  # [rows, edges]: radius >= edge
    counts = at_least.sum(axis=0)
    histogram = counts[:-1] - counts[1:]  # rows in [edge_i, edge_i+1)
    return {"mean": mean, "variance": variance, "correlation": correlation, "histogram": histogram}


def plaintext(data: np.ndarray) -> dict[str, np.ndarray]:
    centred = data - data.mean(0)
    return {
        "mean": data.mean(0),
        "variance": data.var(0),
        "correlation": np.corrcoef(data, rowvar=False),
        "histogram": np.histogram(data[:, 0], EDGES)[0].astype(float),
        "_": centred,
    }


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--parties", type=int, default=3, help="parties when simulated (default 3)")
    options.add_argument("--seed", type=int, default=0)
    args = options.parse_args()

    runtime = parallel.processes.runtime()
    n = runtime.n_parties if runtime is not None else args.parties
    me = parallel.party_index()  # None: the dealer, or simulation (where this process plays every party)
    who = "simulation" if runtime is None else ("dealer" if me is None else f"party {me}")

    data = datasets.load_breast_cancer().data[:, COLUMNS]
    blocks = party_rows(len(data), n)
    keys = jax.random.split(jax.random.key(args.seed), n + 1)
    shares = []
    for owner, (block, key) in enumerate(zip(blocks, keys)):
        mine = data[block]
        held = mine if (runtime is None or me == owner) else jax.ShapeDtypeStruct(mine.shape, mine.dtype)
        shares.append(sjax.share_from(held, key, party=owner, n_parties=n))
    x = sjax.concatenate(shares, axis=0)

    results = jax.jit(joint_statistics, compiler_options=sjax.compiler_options())(x, keys[-1])
    revealed = {name: sjax.reveal(value) for name, value in results.items()}
    if me is None and runtime is not None:
        print("dealer: done; it received no input and no result", flush=True)
        return

    want = plaintext(data)
    np.set_printoptions(precision=4, suppress=True)
    print(f"{who}: {len(data)} rows in all, {blocks[me].stop - blocks[me].start if me is not None else len(data)} "
          "of them mine", flush=True)  # fmt: skip
    for name, value in revealed.items():
        value = np.asarray(value)
        error = float(np.max(np.abs(value - want[name]) / np.maximum(1.0, np.abs(want[name]))))
        status = "matches plaintext" if error <= TOLERANCES[name] else "DIFFERS FROM PLAINTEXT"
        print(f"{who}: {name} ({status}, max relative error {error:.1e}):\n{value}", flush=True)
        if error > TOLERANCES[name]:
            raise SystemExit(f"{name} differs from plaintext by {error:.2e}")


if __name__ == "__main__":
    main()
