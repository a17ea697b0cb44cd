"""Runs protocol bodies under ``jax.shard_map``, one CPU device per party, and checks them against simulation.

Not a pytest module: ``tests/test_parallel.py`` runs this script in a process of its own, because the three
CPU devices it needs exist only if ``XLA_FLAGS=--xla_force_host_platform_device_count=3`` is set before JAX
starts. Run it by hand with::

    XLA_FLAGS=--xla_force_host_platform_device_count=3 python tests/spmd_devices_check.py

For each body (``bilinear_body`` as ``mul`` and as ``matmul``, ``truncate_body``, ``reveal_body``) it checks
that :func:`sjax.parallel.devices.run` gives results bit-identical to :func:`sjax.parallel.simulate.run` for
the same key, under ``jax.jit`` (and eagerly for the truncate and reveal bodies), and that each device holds
only its own party's shard. It also checks that the compiled program really communicates (an all-reduce over
the party devices) and that :func:`sjax.cost` reads the same figures from both forms. Exits with status 0
and prints ``ALL OK`` when every check passes; otherwise prints what failed and exits with status 1.
"""

import os
import sys
import time
import traceback

N_PARTIES = 3
# Harmless when the caller already set it; needed when the script is run by hand without it.
if "--xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (
        os.environ.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={N_PARTIES}"
    )
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import functools  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import sjax  # noqa: E402
from sjax.parallel import devices, simulate  # noqa: E402
from sjax.primitives.arith import bilinear_body  # noqa: E402
from sjax.primitives.sharing import reveal_body  # noqa: E402
from sjax.primitives.truncation import truncate_body  # noqa: E402

FRAC = 16


def shares_of(values, key):
    """``values`` encoded and additively shared among the parties (stacked, party axis first)."""
    encoded = np.asarray(sjax.ring.encode(jnp.asarray(values), FRAC))
    masks = np.asarray(jax.random.bits(key, (N_PARTIES - 1, *encoded.shape), jnp.uint64))
    return jnp.asarray(np.concatenate([(encoded - masks.sum(axis=0))[None], masks]))  # uint64 wraps


def opened(shares):
    """The decoded secret behind stacked shares."""
    return np.asarray(shares).sum(axis=0).view(np.int64) / 2.0**FRAC


def check_placement(result, mesh, what):
    """Party ``i``'s row lives on device ``i`` alone, and nowhere else."""
    assert result.sharding.is_equivalent_to(
        jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("party")), result.ndim
    ), f"{what}: not sharded over the party axis: {result.sharding}"
    shards = sorted(result.addressable_shards, key=lambda s: s.device.id)
    assert len(shards) == N_PARTIES, f"{what}: {len(shards)} shards"
    full = np.asarray(result)
    for i, shard in enumerate(shards):
        assert shard.device == mesh.devices[i], f"{what}: shard {i} on {shard.device}"
        assert shard.data.shape == (1, *result.shape[1:]), f"{what}: shard {i} has shape {shard.data.shape}"
        assert shard.index[0] == slice(i, i + 1), f"{what}: device {i} holds rows {shard.index[0]}"
        np.testing.assert_array_equal(np.asarray(shard.data)[0], full[i], err_msg=f"{what}: shard {i}")


def check_replicated(result, what):
    """A public result: every device holds all of it."""
    full = np.asarray(result)
    shards = result.addressable_shards
    assert len(shards) == N_PARTIES, f"{what}: {len(shards)} shards"
    for shard in shards:
        np.testing.assert_array_equal(np.asarray(shard.data), full, err_msg=f"{what}: {shard.device}")


def compare(body, parties, replicated, mesh, *, out, eager, what):
    """devices.run == simulate.run, bit for bit, under jit (and eagerly when ``eager``).

    Eager shard_map dispatches the body op by op, each op its own small SPMD program: about 12 s of CPU
    for the mul body on a 2-core machine against 1 s under jit. So the eager runs are checked on the
    truncate body (a dealer correlation and an opening, as in every protocol) and the reveal body only.
    """
    # Every run gets its own copy of the keys: the reuse checker is on.
    copies = [tuple(jax.random.clone(k) for k in replicated) for _ in range(2)]
    expected = np.asarray(jax.jit(lambda p, r: simulate.run(body, p, r, out=out))(parties, replicated))
    runs = {
        "jit": jax.jit(lambda p, r: devices.run(body, p, r, mesh=mesh, out=out))(parties, copies[0]),
    }
    if eager:
        runs["eager"] = devices.run(body, parties, copies[1], mesh=mesh, out=out)
    for mode, result in runs.items():
        label = f"{what} ({mode})"
        np.testing.assert_array_equal(np.asarray(result), expected, err_msg=f"{label}: differs from simulate")
        if out == "party":
            check_placement(result, mesh, label)
        else:
            check_replicated(result, label)
    return expected


def check_mul(mesh, key):
    k_x, k_y, k_run = jax.random.split(key, 3)
    x = jnp.array([[1.5, -2.0, 3.25, 0.5], [7.0, -0.125, 2.0, 1.0]])
    y = jnp.array([[2.0, 4.0, -1.0, 8.0], [0.5, 16.0, -3.0, 1.0]])
    body = functools.partial(
        bilinear_body, product=jnp.multiply, correlation="beaver_triple", count=x.size, frac_bits=FRAC
    )
    shares = compare(body, (shares_of(x, k_x), shares_of(y, k_y)), (k_run,), mesh, out="party", eager=False,
                     what="mul")
    # And the shares are those of the product (the runners could agree on a wrong answer).
    np.testing.assert_allclose(opened(shares), x * y, atol=2.0**-FRAC)


def check_matmul(mesh, key):
    k_x, k_y, k_run = jax.random.split(key, 3)
    x = jnp.arange(6.0).reshape(2, 3) / 4
    y = jnp.arange(12.0).reshape(3, 4) - 5
    body = functools.partial(
        bilinear_body, product=sjax.ring.matmul, correlation="matmul_triple", count=1, frac_bits=FRAC
    )
    shares = compare(body, (shares_of(x, k_x), shares_of(y, k_y)), (k_run,), mesh, out="party", eager=False,
                     what="matmul")
    np.testing.assert_allclose(opened(shares), x @ y, atol=2.0**-FRAC)


def check_truncate(mesh, key):
    k_x, k_run = jax.random.split(key)
    x = jnp.array([[3.0, -5.5, 1000.25], [-0.75, 2.0, 6.5]])
    body = functools.partial(truncate_body, bits=4)
    shares = compare(body, (shares_of(x, k_x),), (k_run,), mesh, out="party", eager=True, what="truncate")
    # The secret is x * 2^16 / 2^4 (stochastically rounded to an integer): x / 16 in fixed point.
    np.testing.assert_allclose(opened(shares), x / 16, atol=2.0**-FRAC)


def check_reveal(mesh, key):
    x = jnp.array([[1.0, -2.5], [3.75, 1e6]])
    body = functools.partial(reveal_body, frac_bits=FRAC)
    public = compare(body, (shares_of(x, key),), (), mesh, out="public", eager=True, what="reveal")
    np.testing.assert_array_equal(public, x)


def check_program_communicates(mesh, key):
    # The compiled SPMD program opens values with a collective over the party devices.
    x = jax.random.bits(key, (N_PARTIES, 4), jnp.uint64)
    body = functools.partial(reveal_body, frac_bits=FRAC)
    text = jax.jit(lambda p: devices.run(body, (p,), mesh=mesh, out="public")).lower(x).as_text()
    assert "all_reduce" in text or "all-reduce" in text, "no all-reduce in the lowered program"


def check_cost_reads_the_same(mesh, key):
    # The message records travel inside shard_map too: sjax.cost sees the same traffic in both forms.
    x = jax.ShapeDtypeStruct((N_PARTIES, 2, 3), jnp.uint64)
    y = jax.ShapeDtypeStruct((N_PARTIES, 3, 4), jnp.uint64)
    body = functools.partial(
        bilinear_body, product=sjax.ring.matmul, correlation="matmul_triple", count=1, frac_bits=FRAC
    )
    simulated = sjax.cost(lambda a, b, k: simulate.run(body, (a, b), (k,)))(x, y, key)
    on_devices = sjax.cost(lambda a, b, k: devices.run(body, (a, b), (k,), mesh=mesh))(x, y, key)
    assert on_devices == simulated, f"{on_devices} != {simulated}"
    # [2,3] @ [3,4]: open 6 + 12, then truncate 8; to 2 others.
    assert simulated.rounds == 2 and simulated.bytes_per_party == 2 * 8 * (6 + 12 + 8), simulated


def main() -> int:
    found = jax.devices()
    print(f"jax {jax.__version__}, devices: {found}", flush=True)
    if len(found) < N_PARTIES:
        print(f"FAIL: need {N_PARTIES} devices; is XLA_FLAGS set before JAX starts?", flush=True)
        return 1
    mesh = devices.party_mesh(N_PARTIES)
    checks = [
        check_mul,
        check_matmul,
        check_truncate,
        check_reveal,
        check_program_communicates,
        check_cost_reads_the_same,
    ]
    keys = jax.random.split(jax.random.key(20261128), len(checks))
    failed = []
    for check, key in zip(checks, keys):
        start, cpu = time.perf_counter(), time.process_time()
        try:
            with jax.debug_key_reuse(True):
                check(mesh, key)
        except Exception:  # noqa: BLE001 - report every failure, then exit non-zero
            failed.append(check.__name__)
            print(f"FAIL {check.__name__}:\n{traceback.format_exc()}", flush=True)
        else:
            wall, used = time.perf_counter() - start, time.process_time() - cpu
            print(f"ok   {check.__name__} ({wall:.1f} s, {used:.1f} s of CPU)", flush=True)
    if failed:
        print(f"FAILED: {', '.join(failed)}", flush=True)
        return 1
    print("ALL OK", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
