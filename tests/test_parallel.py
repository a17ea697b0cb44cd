"""Tests for the runners (:mod:`sjax.parallel`) and the communication layer (:mod:`sjax.comm`).

In process: the simulate runner's contract (stacked party inputs, replicated inputs, ``out="party"`` and
``out="public"``, the axis ``"party"``) and what the collectives of :mod:`sjax.comm` compute.

In a process of its own: the SPMD form. ``tests/spmd_devices_check.py`` runs the protocol bodies under
``jax.shard_map`` with one CPU device per party and checks them bit for bit against simulation. It needs
``XLA_FLAGS=--xla_force_host_platform_device_count=3`` before JAX starts, which this process is past.
"""

import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import PARTIES
from jax import lax

import sjax
from sjax import comm
from sjax.parallel import devices, simulate

SPMD_CHECK = Path(__file__).with_name("spmd_devices_check.py")
SPMD_TIMEOUT_S = 300


def words(*values) -> jnp.ndarray:
    return jnp.array(values, dtype=jnp.uint64)


# -- simulate.run -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", PARTIES)
def test_party_index_and_count_inside_a_body(n):
    def body(x):
        return x + comm.party_index().astype(jnp.uint64), jnp.uint64(comm.n_parties()) + 0 * x

    index, count = simulate.run(body, (jnp.zeros((n, 2), jnp.uint64),))
    np.testing.assert_array_equal(index, np.repeat(np.arange(n, dtype=np.uint64)[:, None], 2, axis=1))
    np.testing.assert_array_equal(count, np.full((n, 2), n, np.uint64))


def test_only_party_0_is_first():
    first = simulate.run(lambda x: comm.is_first_party() & (x == x), (jnp.zeros((3,)),))
    np.testing.assert_array_equal(first, [True, False, False])


def test_each_party_sees_its_own_row_and_the_whole_replicated_input():
    stacked = jnp.arange(12, dtype=jnp.uint64).reshape(3, 4)
    public = words(100, 200, 300, 400)
    out = simulate.run(lambda own, pub: own * pub, (stacked,), (public,))
    np.testing.assert_array_equal(out, stacked * public[None])


def test_parties_may_be_pytrees():
    parties = ({"a": jnp.ones((2, 3), jnp.uint64)}, jnp.full((2,), 5, jnp.uint64))
    out = simulate.run(lambda tree, scalar: {"sum": tree["a"] + scalar}, parties)
    assert out["sum"].shape == (2, 3)
    np.testing.assert_array_equal(out["sum"], np.full((2, 3), 6))


def test_party_output_is_stacked_and_public_output_is_not():
    stacked = jnp.arange(6, dtype=jnp.uint64).reshape(3, 2)
    per_party = simulate.run(lambda x: lax.psum(x, comm.PARTY_AXIS), (stacked,), out="party")
    public = simulate.run(lambda x: lax.psum(x, comm.PARTY_AXIS), (stacked,), out="public")
    assert per_party.shape == (3, 2) and public.shape == (2,)
    np.testing.assert_array_equal(public, [6, 9])
    np.testing.assert_array_equal(per_party, np.broadcast_to(public, (3, 2)))


def test_public_output_must_be_the_same_for_every_party():
    with pytest.raises(ValueError):
        simulate.run(lambda x: x + comm.party_index().astype(jnp.uint64), (jnp.zeros((3,), jnp.uint64),),
                     out="public")


def test_the_axis_is_named_party():
    assert comm.PARTY_AXIS == "party"
    # A body may name the axis itself: it is the runner's vmap axis.
    out = simulate.run(lambda x: lax.psum(x, "party"), (words(1, 2, 4),), out="public")
    assert int(out) == 7


def test_simulate_under_jit_matches_eager():
    stacked = jnp.arange(8, dtype=jnp.uint64).reshape(4, 2)

    def body(x):
        return x * (comm.party_index().astype(jnp.uint64) + 1) + lax.psum(x, "party")

    eager = simulate.run(body, (stacked,))
    jitted = jax.jit(lambda s: simulate.run(body, (s,)))(stacked)
    np.testing.assert_array_equal(eager, jitted)


# -- comm: what the collectives compute -------------------------------------------------------------------


@pytest.mark.parametrize("n", PARTIES)
def test_open_shares_sums_modulo_2_64(n):
    # Party i holds 2^63 + i: the sum wraps around the ring.
    x = (np.uint64(2**63) + np.arange(n, dtype=np.uint64))[:, None] * np.ones((1, 3), np.uint64)
    y = jnp.arange(n * 2, dtype=jnp.uint64).reshape(n, 2)
    opened_x, opened_y = simulate.run(comm.open_shares, (jnp.asarray(x), y), out="public")
    expected_x = (n * 2**63 + n * (n - 1) // 2) % 2**64
    np.testing.assert_array_equal(opened_x, np.full((3,), expected_x, np.uint64))
    np.testing.assert_array_equal(opened_y, np.asarray(y).sum(axis=0))


@pytest.mark.parametrize("n", PARTIES)
def test_open_shares_is_one_message_for_all_operands(n):
    def f(x, y):
        return simulate.run(comm.open_shares, (x, y), out="public")

    c = sjax.cost(f)(jax.ShapeDtypeStruct((n, 3), jnp.uint64), jax.ShapeDtypeStruct((n, 2, 2), jnp.uint64))
    # One round, one message of 3 + 4 elements to each of the n - 1 others.
    assert c == sjax.Cost(rounds=1, bytes_per_party=(n - 1) * 8 * (3 + 4), messages=1)


@pytest.mark.parametrize("n", PARTIES)
def test_open_bits_xors(n):
    rows = np.array([[1 << i, (1 << 63) | i] for i in range(n)], dtype=np.uint64)
    (opened,) = simulate.run(comm.open_bits, (jnp.asarray(rows),), out="public")
    expected = np.bitwise_xor.reduce(rows, axis=0)
    np.testing.assert_array_equal(opened, expected)
    assert opened.dtype == jnp.uint64


def test_open_bits_costs_like_open_shares():
    c = sjax.cost(lambda x: simulate.run(comm.open_bits, (x,), out="public"))(
        jax.ShapeDtypeStruct((3, 5), jnp.uint64)
    )
    assert c == sjax.Cost(rounds=1, bytes_per_party=2 * 8 * 5, messages=1)


@pytest.mark.parametrize("opener", [comm.open_shares, comm.open_bits])
def test_opening_nothing_is_an_error(opener):
    with pytest.raises(ValueError, match="at least one"):
        simulate.run(lambda x: opener(), (jnp.zeros((2,)),))


def test_sequential_openings_are_two_rounds():
    def body(x):
        (once,) = comm.open_shares(x)
        (twice,) = comm.open_shares(x + once)
        return twice

    c = sjax.cost(lambda s: simulate.run(body, (s,), out="public"))(jax.ShapeDtypeStruct((2, 4), jnp.uint64))
    assert (c.rounds, c.messages, c.bytes_per_party) == (2, 2, 2 * 8 * 4)


@pytest.mark.parametrize("n", PARTIES)
def test_receive_from_dealer_reaches_party_0_only(n):
    own = jnp.arange(n * 2, dtype=jnp.uint64).reshape(n, 2)
    correction = words(1000, 2000)

    def body(mine, corr):
        (got,) = comm.receive_from_dealer((corr,), (mine,), correlations=(("test_pair", 2),))
        return got

    got = simulate.run(body, (own,), (correction,))
    np.testing.assert_array_equal(got[0], correction)
    np.testing.assert_array_equal(got[1:], own[1:])
    c = sjax.cost(lambda o, k: simulate.run(body, (o,), (k,)))(own, correction)
    # Offline only: 2 words from the dealer, no online round.
    assert c == sjax.Cost(dealer_bytes=16, correlations={"test_pair": 2})


def test_one_dealer_message_may_complete_several_correlations():
    def body(mine, corr):
        both = (("first", 2), ("second", 3))
        return comm.receive_from_dealer((corr, corr), (mine, mine), correlations=both)

    c = sjax.cost(lambda o, k: simulate.run(body, (o,), (k,)))(jnp.zeros((3, 2), jnp.uint64), words(1, 2))
    # Both corrections in one offline message: 2 * 2 words.
    assert c == sjax.Cost(dealer_bytes=32, correlations={"first": 2, "second": 3})


# -- devices: the SPMD form -------------------------------------------------------------------------------


def test_party_mesh_says_how_to_get_more_devices():
    too_many = len(jax.devices()) + 1
    with pytest.raises(ValueError, match="xla_force_host_platform_device_count"):
        devices.party_mesh(too_many)


def test_party_mesh_has_one_device_per_party():
    mesh = devices.party_mesh(1)
    assert mesh.axis_names == ("party",)
    assert mesh.devices.shape == (1,)


def test_protocol_bodies_run_under_shard_map_on_one_device_per_party():
    env = dict(os.environ)
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=3").strip()
    env["JAX_PLATFORMS"] = "cpu"
    try:
        result = subprocess.run(
            [sys.executable, str(SPMD_CHECK)],
            env=env,
            cwd=SPMD_CHECK.parent.parent,
            capture_output=True,
            text=True,
            timeout=SPMD_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired as error:
        pytest.fail(f"{SPMD_CHECK.name} ran past {SPMD_TIMEOUT_S} s:\n{error.stdout}\n{error.stderr}")
    report = (
        f"exit status {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr[-6000:]}"
    )
    assert result.returncode == 0, report
    assert "ALL OK" in result.stdout, report
