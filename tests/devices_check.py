"""Every protocol on a devices mesh (one CPU device per party, ``jax.shard_map``) against simulation.

Not a pytest module: ``tests/test_devices.py`` runs it in a process of its own, because the CPU devices it
needs exist only if ``XLA_FLAGS=--xla_force_host_platform_device_count=4`` is set before JAX starts. By
hand::

    XLA_FLAGS=--xla_force_host_platform_device_count=4 python tests/devices_check.py 2 3

For each party count it shares the same inputs with the same keys twice, simulated and placed with
``sjax.share(..., mesh=sjax.parallel.party_mesh(n))``, runs one jitted catalogue of the core and comparison
protocols on both (for the first party count with a few nonlinear functions, one per family), and checks
that every result is bit-identical, that every share stays placed (party ``i``'s row on device ``i``
alone), and that the revealed values match plaintext. It then runs one encrypted training step
(``sjax.secure`` of an SGD step on a least-squares loss through a relu) the same way. Prints ``ALL OK``
and exits with 0 when every check passes.
"""

import os
import sys
import time

if "--xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4"
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import sjax  # noqa: E402

rng = np.random.default_rng(5)
X = rng.uniform(-4, 4, size=(4, 6)).round(2)
X[0, :3] = [0.0, 1.0, 1.0]  # a zero and a tie
Y = rng.uniform(0.5, 4, size=(4, 6)).round(2)
W = rng.normal(size=(6, 3))
IMG = rng.normal(size=(1, 4, 4, 2))
KER = rng.normal(size=(3, 3, 2, 2)) / 3
W0 = np.array([0.5, -0.25, 0.3, 0.1])  # not zero: relu's gradient at 0 is 0


def core_and_comparisons(x, y, w, img, ker, key):
    """Shares of the results of the core and comparison protocols (a dict)."""
    k = iter(jax.random.split(key, 64))
    pos = sjax.abs(y, next(k))
    return {
        "add": x + y, "sub": x - 2.5, "mul": sjax.mul(x, y, next(k)), "square": sjax.square(x, next(k)),
        "matmul": sjax.matmul(x, w, next(k)), "conv2d": sjax.conv2d(img, ker, next(k)),
        "mean": sjax.mean(x, next(k), axis=0), "truncate": sjax.truncate(x * 4, next(k), bits=2),
        "b2a": sjax.b2a_bits(sjax.bitwise_and(sjax.a2b(x, next(k)), sjax.a2b(y, next(k)), next(k)), next(k), 0),
        "lt": sjax.lt(x, y, next(k)), "le": sjax.le(x, 1.0, next(k)), "gt": sjax.gt(x, y, next(k)),
        "ge": sjax.ge(x, 1.0, next(k)), "eq": sjax.eq(x, 1.0, next(k)), "ne": sjax.ne(x, y, next(k)),
        "sign": sjax.sign(x, next(k)), "abs": pos, "relu": sjax.relu(x, next(k)), "msb": sjax.msb(x, next(k)),
        "where": sjax.where(sjax.lt(x, 0.0, next(k)), x, y, next(k)),
        "maximum": sjax.maximum(x, y, next(k)), "minimum": sjax.minimum(x, y, next(k)),
        "max": sjax.max(x, next(k)), "min": sjax.min(x, next(k), axis=0),
        "argmax": sjax.argmax(x, next(k), one_hot=True), "argmin": sjax.argmin(x, next(k)),
        "sort": sjax.sort(x, next(k)), "top_k": sjax.top_k(x, 2, next(k))[0],
        "max_pool2d": sjax.max_pool2d(img, next(k), (2, 2)), "avg_pool2d": sjax.avg_pool2d(img, next(k), (2, 2)),
    }  # fmt: skip


def nonlinear(x, y, w, img, ker, key):
    """Shares of a few nonlinear functions (a dict): one of each family (range reduction and a polynomial,
    normalisation by the leading one, reduction modulo 2 pi, and softmax's maximum, exponentials and
    reciprocal). The others are compositions of the same protocols, checked in simulation."""
    del w, img, ker
    k = iter(jax.random.split(key, 8))
    pos = sjax.abs(y, next(k))
    return {
        "exp": sjax.exp(x, next(k)), "log": sjax.log(pos, next(k)), "sin": sjax.sin(x, next(k)),
        "softmax": sjax.softmax(x, next(k)),
    }  # fmt: skip


def everything(x, y, w, img, ker, key):
    """The core and comparison protocols and the nonlinear functions, in one program."""
    first, second = jax.random.split(key)
    return core_and_comparisons(x, y, w, img, ker, first) | nonlinear(x, y, w, img, ker, second)


def expected():
    y = np.abs(Y)
    e = np.exp(X - X.max(-1, keepdims=True))
    conv = jax.lax.conv_general_dilated(IMG, KER, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
    pooled = IMG.reshape(1, 2, 2, 2, 2, 2).transpose(0, 1, 3, 2, 4, 5).reshape(1, 2, 2, 4, 2)
    erf = np.vectorize(__import__("math").erf)
    mu, sd = X.mean(-1, keepdims=True), X.std(-1, keepdims=True)
    return {
        "b2a": (np.round(X * 2**16).astype(np.int64) & np.round(Y * 2**16).astype(np.int64) & 1).astype(float),
        "add": X + Y, "sub": X - 2.5, "mul": X * Y, "square": X * X, "matmul": X @ W, "conv2d": np.asarray(conv),
        "mean": X.mean(0), "truncate": X, "lt": X < Y, "le": X <= 1, "gt": X > Y, "ge": X >= 1, "eq": X == 1,
        "ne": X != Y, "sign": np.sign(X), "abs": y, "relu": np.maximum(X, 0), "msb": X < 0,
        "where": np.where(X < 0, X, Y), "maximum": np.maximum(X, Y), "minimum": np.minimum(X, Y),
        "max": X.max(-1), "min": X.min(0), "argmax": np.eye(6)[X.argmax(-1)], "argmin": X.argmin(-1),
        "sort": np.sort(X), "top_k": -np.sort(-X)[:, :2], "max_pool2d": pooled.max(3),
        "avg_pool2d": pooled.mean(3), "exp": np.exp(X), "log": np.log(y), "reciprocal": 1 / y, "div": X / y,
        "sqrt": np.sqrt(y), "rsqrt": 1 / np.sqrt(y), "sigmoid": 1 / (1 + np.exp(-X)), "tanh": np.tanh(X),
        "softmax": e / e.sum(-1, keepdims=True), "log_softmax": np.log(e / e.sum(-1, keepdims=True)),
        "erf": erf(X), "gelu": X / 2 * (1 + erf(X / np.sqrt(2))), "silu": X / (1 + np.exp(-X)),
        "sin": np.sin(X), "cos": np.cos(X), "pow": y**1.5, "layer_norm": (X - mu) / np.sqrt(sd**2 + 1e-6),
    }  # fmt: skip


def inputs(n, key, mesh):
    k = jax.random.split(key, 5)
    return [sjax.share(v, kk, n, mesh=mesh) for v, kk in zip((X, Y, W, IMG, KER), k)]


def check_placed(share, mesh, n, what):
    leaf = share.shares
    assert sjax.parallel.mesh_of(leaf) is not None, f"{what}: not placed on the mesh"
    shards = sorted(leaf.addressable_shards, key=lambda s: s.device.id)
    assert len(shards) == n, f"{what}: {len(shards)} shards"
    for i, shard in enumerate(shards):
        assert shard.device == mesh.devices[i], f"{what}: row {i} on {shard.device}"
        assert shard.index[0] == slice(i, i + 1), f"{what}: device {i} holds rows {shard.index[0]}"


def check_catalogue(n, catalogue):
    mesh = sjax.parallel.party_mesh(n)
    key = jax.random.key(11)
    # Integer programs: optimisation changes no bit of the result, only how long XLA takes to compile.
    run = jax.jit(catalogue, compiler_options={"xla_backend_optimization_level": 0})
    t0 = time.perf_counter()
    simulated = run(*inputs(n, key, None), jax.random.key(12))
    t1 = time.perf_counter()
    placed = run(*inputs(n, key, mesh), jax.random.key(12))
    t2 = time.perf_counter()
    print(f"{n} parties, {catalogue.__name__}: simulated {t1 - t0:.0f} s, placed {t2 - t1:.0f} s (compile and "
          "run)", flush=True)  # fmt: skip
    want = expected()
    for name, share in placed.items():
        np.testing.assert_array_equal(
            np.asarray(share.shares), np.asarray(simulated[name].shares), err_msg=f"{name}: differs from simulate"
        )
        check_placed(share, mesh, n, name)
        # Bit-identical, so the (fast, single-device) simulated reveal checks the placed result's value.
        got = np.asarray(sjax.reveal(simulated[name]))
        np.testing.assert_allclose(got, np.asarray(want[name], dtype=float), atol=2e-3, rtol=2e-3, err_msg=name)
    print(f"{n} parties: {len(placed)} protocols bit-identical to simulation, placed, correct", flush=True)
    # reveal to one party only: the value comes off that party's device.
    first = next(iter(placed))
    got = sjax.reveal(placed[first], to=n - 1)
    np.testing.assert_allclose(np.asarray(got), np.asarray(want[first], dtype=float), atol=2e-3)


def check_training_step(n):
    mesh = sjax.parallel.party_mesh(n)
    features, labels = X[:, :4], (X[:, 4] > 0).astype(float)

    def step(w, inputs, targets):
        def loss(w):
            # Least squares and a relu: products and a comparison, quick to compile twice per party count.
            residual = jax.nn.relu(inputs @ w) - targets
            return jnp.mean(residual * residual)

        return w - 0.5 * jax.grad(loss)(w)

    results = []
    for where in (None, mesh):
        k = jax.random.split(jax.random.key(3), 4)
        args = [sjax.share(v, kk, n, mesh=where) for v, kk in zip((W0, features, labels), k)]
        program = jax.jit(sjax.secure(step), compiler_options={"xla_backend_optimization_level": 0})
        results.append(program(*args, key=k[3]))
    np.testing.assert_array_equal(np.asarray(results[0].shares), np.asarray(results[1].shares))
    check_placed(results[1], mesh, n, "training step")
    np.testing.assert_allclose(sjax.reveal(results[1]), step(W0, features, labels), atol=2e-3)
    print(f"{n} parties: a training step is bit-identical to simulation", flush=True)


if __name__ == "__main__":
    # Every core and comparison protocol for every party count; with them, for the first count, a few
    # nonlinear functions (one per family: the others compose the same protocols, and each catalogue
    # compiles twice, simulated and placed, which is what takes the time).
    counts = [int(a) for a in sys.argv[1:]] or [2, 3]
    for i, n in enumerate(counts):
        check_catalogue(n, everything if i == 0 else core_and_comparisons)
        check_training_step(n)
    print("ALL OK")
