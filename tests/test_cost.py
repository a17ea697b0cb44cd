"""Tests for :func:`sjax.cost`: exact communication figures, read off the trace before anything runs.

Every expected figure below is a hand count, written out next to its assertion. The rules of the count
(see :mod:`sjax.comm`):

* an opening of ``s`` ring elements is one round and one message, and each party sends every other party
  its ``s`` shares: ``(n - 1) * 8 * s`` bytes per party;
* a dealer correction of ``s`` elements costs no online round; the dealer sends ``8 * s`` bytes to party 0;
* a product of two secrets opens ``d = x - a`` and ``e = y - b`` (one round, one message), then truncates
  the product by opening ``c = z + 2^62 + r`` (one more round and message); its triple costs the dealer
  ``8 * size(out)`` bytes and the truncation triple two corrections, ``16 * size(out)`` bytes.

Most tests trace with abstract shares (``jax.ShapeDtypeStruct`` leaves), which is part of the contract: cost
never needs the values.
"""

import functools
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import PARTIES
from jax import lax

import sjax
from sjax.accounting import LAN, WAN, NetworkModel

FRAC = sjax.ring.DEFAULT_FRAC_BITS


def secret(shape, n):
    """An abstract share of ``shape`` held by ``n`` parties: shapes only, no values."""
    return sjax.ArithShare(jax.ShapeDtypeStruct((n, *shape), jnp.uint64))


def mul_cost(n, m):
    """Hand count of ``sjax.mul`` on two secrets of ``m`` elements (no broadcasting)."""
    return sjax.Cost(
        rounds=2,  # open (d, e), then open c for the truncation
        bytes_per_party=(n - 1) * 8 * (m + m)  # d and e
        + (n - 1) * 8 * m,  # c
        messages=2,
        dealer_bytes=8 * m + 16 * m,  # triple correction + two truncation corrections
        correlations={"beaver_triple": m, "truncation_triple": m},
    )


def twice(c: sjax.Cost, rounds: int) -> sjax.Cost:
    """``c`` with its traffic doubled and the given number of rounds."""
    return sjax.Cost(
        rounds=rounds,
        bytes_per_party=2 * c.bytes_per_party,
        messages=2 * c.messages,
        dealer_bytes=2 * c.dealer_bytes,
        correlations={k: 2 * v for k, v in c.correlations.items()},
    )


# -- single protocols ------------------------------------------------------------------------------


@pytest.mark.parametrize("n", PARTIES)
def test_mul_of_two_secrets(n, keys):
    m = 7
    c = sjax.cost(sjax.mul)(secret((m,), n), secret((m,), n), keys())
    assert isinstance(c, sjax.Cost)
    # rounds 2; bytes (n-1)*8*(7+7) + (n-1)*8*7 = (n-1)*168; dealer 8*7 + 16*7 = 168.
    assert c == sjax.Cost(
        rounds=2,
        bytes_per_party=(n - 1) * 8 * 3 * m,
        messages=2,
        dealer_bytes=24 * m,
        correlations={"beaver_triple": m, "truncation_triple": m},
    )


@pytest.mark.parametrize("n", PARTIES)
def test_mul_with_broadcasting(n, keys):
    a, b = 3, 4
    c = sjax.cost(sjax.mul)(secret((a, b), n), secret((b,), n), keys())
    # d has a*b elements, e has b; the product (and its truncation) has a*b.
    assert c.rounds == 2
    assert c.bytes_per_party == (n - 1) * 8 * (a * b + b + a * b)
    assert c.dealer_bytes == 24 * a * b
    assert c.correlations == {"beaver_triple": a * b, "truncation_triple": a * b}
    assert c.messages == 2


@pytest.mark.parametrize("n", PARTIES)
def test_matmul_of_two_secrets(n, keys):
    m, k, p = 3, 4, 5
    c = sjax.cost(sjax.matmul)(secret((m, k), n), secret((k, p), n), keys())
    # One matrix triple: open D [m,k] and E [k,p] (round 1), truncate the [m,p] product (round 2).
    assert c == sjax.Cost(
        rounds=2,
        bytes_per_party=(n - 1) * 8 * (m * k + k * p + m * p),
        messages=2,
        dealer_bytes=8 * m * p + 16 * m * p,
        correlations={"matmul_triple": 1, "truncation_triple": m * p},
    )


@pytest.mark.parametrize("n", PARTIES)
def test_square(n, keys):
    m = 6
    c = sjax.cost(sjax.square)(secret((m,), n), keys())
    # Opens d = x - a alone (m elements), then truncates (m elements): half of mul's first round.
    assert c == sjax.Cost(
        rounds=2,
        bytes_per_party=(n - 1) * 8 * (m + m),
        messages=2,
        dealer_bytes=8 * m + 16 * m,  # a*a correction + truncation
        correlations={"square_pair": m, "truncation_triple": m},
    )


@pytest.mark.parametrize("n", PARTIES)
@pytest.mark.parametrize(
    "strides, padding, out_hw",
    [
        ((1, 1), "SAME", (5, 5)),  # SAME keeps 5x5
        ((2, 2), "VALID", (2, 2)),  # floor((5 - 3) / 2) + 1 = 2
        ((1, 1), ((1, 0), (0, 1)), (4, 4)),  # (5 + 1 - 3) / 1 + 1 = 4 both ways
    ],
)
def test_conv2d_of_two_secrets(n, strides, padding, out_hw, keys):
    x_shape, w_shape = (2, 5, 5, 3), (3, 3, 3, 4)  # NHWC, HWIO
    out = 2 * out_hw[0] * out_hw[1] * 4  # N * H' * W' * C_out
    x, w = secret(x_shape, n), secret(w_shape, n)
    c = sjax.cost(sjax.conv2d)(x, w, keys(), strides=strides, padding=padding)
    # Open the whole input (150) and kernel (108) once, then truncate the output.
    assert c == sjax.Cost(
        rounds=2,
        bytes_per_party=(n - 1) * 8 * (150 + 108 + out),
        messages=2,
        dealer_bytes=24 * out,
        correlations={"conv_triple": 1, "truncation_triple": out},
    )


@pytest.mark.parametrize("n", PARTIES)
def test_truncate(n, keys):
    c = sjax.cost(sjax.truncate)(secret((2, 3), n), keys())
    # One opening of c (6 elements); two dealer corrections per element.
    assert c == sjax.Cost(
        rounds=1,
        bytes_per_party=(n - 1) * 8 * 6,
        messages=1,
        dealer_bytes=16 * 6,
        correlations={"truncation_triple": 6},
    )


def test_truncate_by_zero_bits_is_free(keys):
    assert sjax.cost(sjax.truncate)(secret((4,), 3), keys(), bits=0) == sjax.Cost()


@pytest.mark.parametrize("n", PARTIES)
def test_reveal(n):
    c = sjax.cost(sjax.reveal)(secret((2, 3), n))
    # Every party sends its 6 shares to each of the n-1 others; no correlated randomness.
    assert c == sjax.Cost(rounds=1, bytes_per_party=(n - 1) * 8 * 6, messages=1)
    assert c.dealer_bytes == 0 and c.correlations == {}


@pytest.mark.parametrize("n", PARTIES)
def test_share_is_free(n, keys):
    # Masks come from seeds the owner shares pairwise: nothing is sent, online or offline.
    assert sjax.cost(sjax.share)(jnp.ones((4, 5)), keys(), n_parties=n) == sjax.Cost()


@pytest.mark.parametrize("n", PARTIES)
@pytest.mark.parametrize("public", [3, True, np.arange(5, dtype=np.int32)], ids=["int", "bool", "int-array"])
def test_mul_by_public_integer_is_free(n, public, keys):
    x = secret((5,), n)
    # Each party scales its own share; no truncation because the public factor has no fractional bits.
    assert sjax.cost(sjax.mul)(x, public, keys()) == sjax.Cost()
    assert sjax.cost(sjax.mul)(public, x, keys()) == sjax.Cost()


@pytest.mark.parametrize("n", PARTIES)
def test_mul_by_public_float_is_one_truncation(n, keys):
    m = 5
    expected = sjax.Cost(
        rounds=1,
        bytes_per_party=(n - 1) * 8 * m,  # the truncation's opening
        messages=1,
        dealer_bytes=16 * m,
        correlations={"truncation_triple": m},
    )
    assert sjax.cost(sjax.mul)(secret((m,), n), 2.5, keys()) == expected
    assert sjax.cost(sjax.mul)(np.full((m,), 0.5), secret((m,), n), keys()) == expected


@pytest.mark.parametrize("n", PARTIES)
def test_matmul_by_public_matrix(n, keys):
    m, k, p = 2, 3, 4
    x = secret((m, k), n)
    # An integer matrix multiplies locally; a float one needs one truncation of the [m, p] product.
    assert sjax.cost(sjax.matmul)(x, np.ones((k, p), np.int32), keys()) == sjax.Cost()
    assert sjax.cost(sjax.matmul)(x, np.ones((k, p)) / 3, keys()) == sjax.Cost(
        rounds=1,
        bytes_per_party=(n - 1) * 8 * m * p,
        messages=1,
        dealer_bytes=16 * m * p,
        correlations={"truncation_triple": m * p},
    )


@pytest.mark.parametrize("n", PARTIES)
def test_mean(n, keys):
    x = secret((4, 6), n)
    # Over everything: a local sum, then one truncation of the single output.
    assert sjax.cost(sjax.mean)(x, keys()) == sjax.Cost(
        rounds=1,
        bytes_per_party=(n - 1) * 8,
        messages=1,
        dealer_bytes=16,
        correlations={"truncation_triple": 1},
    )
    # Over axis 1: 4 outputs to truncate.
    assert sjax.cost(sjax.mean)(x, keys(), axis=1) == sjax.Cost(
        rounds=1,
        bytes_per_party=(n - 1) * 8 * 4,
        messages=1,
        dealer_bytes=16 * 4,
        correlations={"truncation_triple": 4},
    )
    # Over an axis of length 1 the count is 1: nothing to divide, nothing sent.
    assert sjax.cost(sjax.mean)(secret((4, 1), n), keys(), axis=1) == sjax.Cost()


# -- composition -------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", PARTIES)
def test_dependent_products_add_rounds(n, keys):
    m, k, p = 3, 4, 2

    def f(x, y, w, key):
        k1, k2 = jax.random.split(key)
        return sjax.matmul(sjax.mul(x, y, k1), w, k2)

    c = sjax.cost(f)(secret((m, k), n), secret((m, k), n), secret((k, p), n), keys())
    # mul: 2 rounds, then matmul on its result: 2 more.
    assert c.rounds == 4
    assert c.messages == 4
    assert c.bytes_per_party == (n - 1) * 8 * (3 * m * k) + (n - 1) * 8 * (m * k + k * p + m * p)
    assert c.dealer_bytes == 24 * m * k + 24 * m * p
    assert c.correlations == {"beaver_triple": m * k, "truncation_triple": m * k + m * p, "matmul_triple": 1}


@pytest.mark.parametrize("n", PARTIES)
def test_independent_products_share_rounds(n, keys):
    m = 4

    def f(x, y, key):
        k1, k2 = jax.random.split(key)
        return sjax.mul(x, y, k1), sjax.mul(y, x, k2)

    c = sjax.cost(f)(secret((m,), n), secret((m,), n), keys())
    # Neither depends on the other: 2 rounds on the critical path, twice the traffic, 4 messages.
    assert c == twice(mul_cost(n, m), rounds=2)
    assert c.messages == 4


def test_chain_of_three_products(keys):
    def f(x, key):
        k1, k2, k3 = jax.random.split(key, 3)
        return sjax.mul(sjax.mul(sjax.mul(x, x, k1), x, k2), x, k3)

    c = sjax.cost(f)(secret((3,), 3), keys())
    assert c.rounds == 6 and c.messages == 6
    assert c.bytes_per_party == 3 * mul_cost(3, 3).bytes_per_party


def test_unused_communication_still_counts(keys):
    # A product whose result is dropped still ran: its rounds and bytes count.
    def f(x, key):
        sjax.mul(x, x, key)
        return x

    assert sjax.cost(f)(secret((3,), 2), keys()) == mul_cost(2, 3)


@pytest.mark.parametrize("n", PARTIES)
def test_jit_gives_the_same_figures(n, keys):
    m = 4
    x, y = secret((m,), n), secret((m,), n)
    jitted = jax.jit(sjax.mul)
    expected = mul_cost(n, m)
    assert sjax.cost(jitted)(x, y, keys()) == expected
    # A second call hits jit's trace cache; the messages must still be seen.
    assert sjax.cost(jitted)(x, y, keys()) == expected
    # So must cost of a function that calls the jitted one, nested inside another jit.
    assert sjax.cost(jax.jit(lambda a, b, k: jitted(a, b, k)))(x, y, keys()) == expected


def with_custom_jvp(f):
    wrapped = jax.custom_jvp(lambda x, y, key: f(x, y, key).shares)
    wrapped.defjvp(lambda primals, tangents: (wrapped(*primals), tangents[0]))
    return wrapped


@pytest.mark.parametrize(
    "wrap",
    [jax.checkpoint, functools.partial(jax.named_call, name="product"), with_custom_jvp],
    ids=["checkpoint", "named_call", "custom_jvp"],
)
def test_wrappers_keep_the_figures(wrap, keys):
    x = secret((4,), 3)
    assert sjax.cost(wrap(sjax.mul))(x, x, keys()) == mul_cost(3, 4)


def test_jit_after_running_gives_the_same_figures(keys):
    n, m = 2, 3
    x = sjax.ArithShare(jax.random.bits(keys(), (n, m), jnp.uint64))
    jitted = jax.jit(sjax.mul)
    jitted(x, x, keys()).shares.block_until_ready()  # compiled and cached
    assert sjax.cost(jitted)(x, x, keys()) == mul_cost(n, m)


@pytest.mark.parametrize("trips", [1, 3])
def test_fori_loop_multiplies_by_trip_count(trips, keys):
    n, m = 3, 4

    def f(x, y, key):
        return lax.fori_loop(0, trips, lambda i, acc: sjax.mul(acc, y, jax.random.fold_in(key, i)), x)

    c = sjax.cost(f)(secret((m,), n), secret((m,), n), keys())
    one = mul_cost(n, m)
    assert c == sjax.Cost(
        rounds=trips * one.rounds,
        bytes_per_party=trips * one.bytes_per_party,
        messages=trips * one.messages,
        dealer_bytes=trips * one.dealer_bytes,
        correlations={k: trips * v for k, v in one.correlations.items()},
    )


def test_fori_loop_with_offset_bounds(keys):
    # fori_loop(2, 7) runs 5 times.
    def f(x, key):
        return lax.fori_loop(2, 7, lambda i, acc: sjax.truncate(acc, jax.random.fold_in(key, i)), x)

    c = sjax.cost(f)(secret((4,), 2), keys())
    assert (c.rounds, c.messages, c.bytes_per_party) == (5, 5, 5 * 8 * 4)


def test_scan_multiplies_by_length(keys):
    n, m, length = 5, 3, 4

    def f(x, y, key):
        def step(acc, k):
            return sjax.mul(acc, y, k), None

        return lax.scan(step, x, jax.random.split(key, length))[0]

    c = sjax.cost(f)(secret((m,), n), secret((m,), n), keys())
    one = mul_cost(n, m)
    assert c.rounds == length * 2
    assert c.bytes_per_party == length * one.bytes_per_party
    assert c.messages == length * 2
    assert c.dealer_bytes == length * one.dealer_bytes
    assert c.correlations == {"beaver_triple": length * m, "truncation_triple": length * m}


def test_scan_after_an_opening_starts_later(keys):
    # A reveal (1 round) feeds a scan of 2 truncations (2 rounds): 3 rounds in all.
    def f(x, key):
        y = x + sjax.reveal(x)
        step = lambda acc, k: (sjax.truncate(acc, k), None)  # noqa: E731
        return lax.scan(step, y, jax.random.split(key, 2))[0]

    c = sjax.cost(f)(secret((3,), 2), keys())
    assert c.rounds == 3 and c.messages == 3


@pytest.mark.parametrize("costly_branch", [True, False])
def test_cond_takes_the_costlier_branch(costly_branch, keys):
    n, m = 3, 4

    def f(pred, x, y, key):
        costly = lambda: sjax.mul(x, y, key)  # noqa: E731
        cheap = lambda: x  # noqa: E731
        return lax.cond(pred, costly, cheap) if costly_branch else lax.cond(pred, cheap, costly)

    assert sjax.cost(f)(True, secret((m,), n), secret((m,), n), keys()) == mul_cost(n, m)


def test_cond_between_two_protocols(keys):
    n, m, k, p = 2, 3, 4, 5

    def f(pred, x, w, z, key):
        return lax.cond(pred, lambda: sjax.truncate(z, key), lambda: sjax.matmul(x, w, key))

    c = sjax.cost(f)(True, secret((m, k), n), secret((k, p), n), secret((m, p), n), keys())
    assert c == sjax.cost(sjax.matmul)(secret((m, k), n), secret((k, p), n), keys())


def test_switch_takes_the_costliest_of_three_branches(keys):
    def f(index, x, key):
        return lax.switch(
            index,
            [lambda: x, lambda: sjax.mul(x, x, key), lambda: sjax.truncate(x, key)],
        )

    assert sjax.cost(f)(0, secret((5,), 2), keys()) == mul_cost(2, 5)


def test_cond_on_an_opened_predicate_waits_for_it(keys):
    n, m = 3, 4

    def f(x, y, key):
        k1, k2 = jax.random.split(key)
        positive = sjax.reveal(x)[0] > 0  # round 1
        # The branch can only start once the predicate is known: its 2 rounds come after.
        return lax.cond(positive, lambda: sjax.mul(x, y, k1), lambda: sjax.mul(y, y, k2))

    c = sjax.cost(f)(secret((m,), n), secret((m,), n), keys())
    assert c.rounds == 1 + 2
    assert c.bytes_per_party == (n - 1) * 8 * m + mul_cost(n, m).bytes_per_party
    assert c.messages == 3


def test_while_loop_that_communicates_is_rejected(keys):
    def f(x, key):
        def body(carry):
            i, acc = carry
            return i + 1, sjax.truncate(acc, jax.random.fold_in(key, i))

        return lax.while_loop(lambda carry: carry[0] < 3, body, (0, x))[1]

    with pytest.raises(ValueError, match="while loop"):
        sjax.cost(f)(secret((3,), 2), keys())


def test_fori_loop_with_traced_bounds_is_rejected(keys):
    # Traced bounds turn fori_loop into a while loop: no static trip count.
    def f(x, trips, key):
        return lax.fori_loop(0, trips, lambda i, acc: sjax.truncate(acc, jax.random.fold_in(key, i)), x)

    with pytest.raises(ValueError, match="static"):
        sjax.cost(f)(secret((3,), 2), 4, keys())


def test_while_loop_without_communication_is_fine(keys):
    def f(x, key):
        count = lax.while_loop(lambda i: i < 10, lambda i: i + 1, 0)
        return sjax.mul(x, x, key), count

    assert sjax.cost(f)(secret((3,), 2), keys()) == mul_cost(2, 3)


@pytest.mark.parametrize("n", PARTIES)
def test_vmap_over_a_batch_multiplies_traffic(n, keys):
    batch, m = 4, 3
    xs = sjax.ArithShare(jax.ShapeDtypeStruct((n, batch, m), jnp.uint64))
    batched_axis = sjax.ArithShare(1, frac_bits=FRAC)  # the batch is axis 1 of the stacked leaf

    def f(xs, key):
        return jax.vmap(sjax.mul, in_axes=(batched_axis, batched_axis, 0), out_axes=batched_axis)(
            xs, xs, jax.random.split(key, batch)
        )

    c = sjax.cost(f)(xs, keys())
    # The batch runs in lock step (2 rounds, 2 messages), but every element is opened and dealt:
    # the same traffic as one mul of batch * m elements.
    one_big = mul_cost(n, batch * m)
    assert c.rounds == 2
    assert c.messages == 2
    assert c.bytes_per_party == one_big.bytes_per_party
    assert c.dealer_bytes == one_big.dealer_bytes
    assert c.correlations == one_big.correlations


# -- inputs --------------------------------------------------------------------------------------------


def test_concrete_and_abstract_inputs_cost_the_same(keys):
    n, m = 3, 4
    concrete = sjax.share(jnp.arange(m, dtype=jnp.float32), keys(), n_parties=n)
    # jax.eval_shape of share gives an ArithShare whose leaf is a ShapeDtypeStruct.
    abstract = jax.eval_shape(lambda k: sjax.share(jnp.zeros(m), k, n_parties=n), keys())
    assert isinstance(abstract, sjax.ArithShare)
    assert isinstance(abstract.shares, jax.ShapeDtypeStruct)
    abstract_key = jax.ShapeDtypeStruct((), jax.random.key(0).dtype)
    expected = mul_cost(n, m)
    assert sjax.cost(sjax.mul)(concrete, concrete, keys()) == expected
    assert sjax.cost(sjax.mul)(abstract, abstract, keys()) == expected
    assert sjax.cost(sjax.mul)(abstract, abstract, abstract_key) == expected


def test_keyword_arguments_pass_through(keys):
    x = secret((4, 6), 2)
    # bits=8 is static; passed positionally it would be traced.
    assert sjax.cost(sjax.truncate)(x, keys(), bits=8).correlations == {"truncation_triple": 24}


def test_cost_does_not_run_the_function(keys):
    n = 3
    ran = []
    x = sjax.ArithShare(jax.random.bits(keys(), (n, 4), jnp.uint64))

    def f(x, key):
        jax.debug.callback(lambda: ran.append(1))
        return sjax.mul(x, x, key)

    assert sjax.cost(f)(x, keys()) == mul_cost(n, 4)
    assert ran == []


def test_cost_of_a_huge_matmul_is_instant(keys):
    n, s = 3, 4096
    big = secret((s, s), n)  # 3 parties x 16.8M uint64: 400 MiB if it were real
    start = time.perf_counter()
    c = sjax.cost(sjax.matmul)(big, big, keys())
    assert time.perf_counter() - start < 5.0
    assert c == sjax.Cost(
        rounds=2,
        bytes_per_party=(n - 1) * 8 * 3 * s * s,  # D, E and the truncation opening, each s*s
        messages=2,
        dealer_bytes=24 * s * s,
        correlations={"matmul_triple": 1, "truncation_triple": s * s},
    )


# -- the Cost object -------------------------------------------------------------------------------------


def test_seconds_with_a_custom_network(keys):
    c = sjax.cost(sjax.mul)(secret((10,), 3), secret((10,), 3), keys())
    # rounds 2, bytes (3-1)*8*30 = 480.
    assert (c.rounds, c.bytes_per_party) == (2, 480)
    slow = NetworkModel("slow", latency_s=0.5, bandwidth_bytes_per_s=100.0)
    assert c.seconds(slow) == pytest.approx(2 * 0.5 + 480 / 100.0)
    assert c.seconds() == pytest.approx(c.lan_seconds)
    assert c.lan_seconds == pytest.approx(2 * 0.25e-3 + 480 / 1.25e9)
    assert c.wan_seconds == pytest.approx(2 * 40e-3 + 480 / 12.5e6)
    assert c.seconds(LAN) == c.lan_seconds and c.seconds(WAN) == c.wan_seconds
    assert sjax.LAN is LAN and sjax.WAN is WAN


def test_seconds_of_nothing_is_zero():
    assert sjax.Cost().seconds(WAN) == 0.0
    assert sjax.Cost().lan_seconds == 0.0


def test_cost_is_immutable(keys):
    c = sjax.cost(sjax.reveal)(secret((3,), 2))
    with pytest.raises(AttributeError):
        c.rounds = 0


def test_str_is_readable(keys):
    text = str(sjax.cost(sjax.mul)(secret((7,), 3), secret((7,), 3), keys()))
    # 2 rounds, (3-1)*8*21 = 336 bytes per party, dealer 24*7 = 168 bytes.
    assert "2 rounds" in text
    assert "336 B" in text
    assert "168 B" in text
    assert "beaver_triple: 7" in text and "truncation_triple: 7" in text
    assert "LAN" in text and "WAN" in text
    assert "\n" not in text


def test_str_of_large_and_empty_costs(keys):
    big = str(sjax.cost(sjax.reveal)(secret((1024, 1024), 2)))
    assert "8.0 MiB" in big  # 8 * 2^20 bytes
    empty = str(sjax.cost(sjax.share)(jnp.ones(3), keys()))
    assert "0 rounds" in empty and "none" in empty
