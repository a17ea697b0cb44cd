"""Tests for the comparisons and oblivious selection of :mod:`sjax.primitives.compare`.

Functions under test: ``sjax.lt``, ``le``, ``gt``, ``ge``, ``eq``, ``ne``, ``sign``, ``abs``, ``relu``,
``where``, ``maximum`` and ``minimum``. All of them are exact, so every result is compared bit for bit:
the test opens a result itself (the sum of the parties' shares modulo 2^64, read as ``int64``) and checks
it against numpy on the same ring integers. A comparison must give exactly ``2**16`` (1.0) or 0 (0.0).

Inputs are written as ring integers ("raw" values, ``x * 2**16``) and shared with ``frac_bits=0``, then
read at the default 16 fractional bits: that reaches every representable step, which float64 cannot
spell out at the top of the range.

Tested domain (the documented one, ``|x - y| < 2**(63 - 16)``): ``|x|, |y| <= 2**46 - 2**-16``, i.e. raw
magnitudes up to ``M = 2**62 - 1``. The public operands ``y`` are float64 values that encode exactly (at
most 53 significant bits of the raw value); the largest is ``T = 2**62 - 2**9`` raw. The cases: ties, zero
against the smallest steps ``±2**-16``, single steps next to ordinary values and next to ``±T``, the ends
of the domain against each other, random pairs over the whole domain and random pairs one or two steps
apart. ``where`` with a secret condition is checked both for ``|a - b| < 2**30`` (where its product with the
condition stays inside the truncation's domain) and over the whole comparison domain; with a public
boolean condition, over the whole domain.

Compilation is what costs time here (a few seconds per protocol call on a small machine), so ONE jitted
function runs every protocol once on arrays that hold all cases, per number of parties (2 and 3); the
tests below read its results from a module-scoped fixture. Costs are read off traces of abstract shares.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sjax

F = 16
ONE = 1 << F  # 1.0, raw
M = 2**62 - 1  # the largest raw magnitude tested: |x| <= 2^46 - 2^-16
T = 2**62 - 2**9  # the largest raw value below 2^62 that float64 holds exactly (53 significant bits)

# -- the cases -------------------------------------------------------------------------------------

# (x, y, order) with x and y raw and the order of x against y written out by hand. Every y is exactly
# representable as a float64 real (it is also used as a public operand).
EDGES = [
    # ties
    (0, 0, "="), (1, 1, "="), (-1, -1, "="), (ONE, ONE, "="), (-3 * ONE // 2, -3 * ONE // 2, "="),
    (T, T, "="), (-T, -T, "="),
    # zero against the smallest steps, on either side
    (1, 0, ">"), (-1, 0, "<"), (0, 1, "<"), (0, -1, ">"),
    # one step next to ordinary values and next to the largest exact public values
    (ONE + 1, ONE, ">"), (ONE - 1, ONE, "<"), (-ONE - 1, -ONE, "<"), (-ONE + 1, -ONE, ">"),
    (T + 1, T, ">"), (T - 1, T, "<"), (-T + 1, -T, ">"), (-T - 1, -T, "<"),
    # the ends of the domain
    (M, -T, ">"), (-M, T, "<"), (M, 0, ">"), (-M, 0, "<"), (M, T, ">"), (-M, -T, "<"),
    (0, T, "<"), (0, -T, ">"), (M - 1, T, ">"),
]  # fmt: skip
N_CASES = 96


def _cases():
    rng = np.random.default_rng(20261128)
    x = [a for a, _, _ in EDGES]
    y = [b for _, b, _ in EDGES]
    random_count = (N_CASES - len(EDGES)) // 2
    # Random public-exact y over the whole domain: a 53-bit integer times 2^0..2^9 (at most T).
    y_far = rng.integers(-(2**53) + 1, 2**53, random_count) << rng.integers(0, 10, random_count)
    x_far = rng.integers(-M, M, random_count, endpoint=True)
    near_count = N_CASES - len(EDGES) - random_count
    y_near = rng.integers(-(2**53) + 1, 2**53, near_count) << rng.integers(0, 10, near_count)
    x_near = y_near + rng.integers(-2, 3, near_count)
    x = np.concatenate([x, x_far, x_near]).astype(np.int64)
    y = np.concatenate([y, y_far, y_near]).astype(np.int64)
    assert np.all(np.abs(x) <= M) and np.all(np.abs(y) <= T)
    assert np.all((y.astype(np.float64) * 2.0**-F * 2.0**F).astype(np.int64) == y), "y must be float-exact"
    condition = rng.integers(0, 2, N_CASES).astype(np.int64)
    return x, y, condition


X, Y, COND = _cases()
Y_PUBLIC = Y.astype(np.float64) * 2.0**-F  # exact
# Operands for where with a secret condition, whose product with the condition must stay below 2^62 raw:
# |a - b| < 2^30 (see test_where_secret_condition_over_the_comparison_domain for the full range).
X_SMALL, Y_SMALL = X >> 17, Y >> 17
Y_SMALL_PUBLIC = Y_SMALL.astype(np.float64) * 2.0**-F  # exact: a right shift keeps y float-exact


# Each comparison and its numpy counterpart.
COMPARISONS = {
    "lt": np.less, "le": np.less_equal, "gt": np.greater,
    "ge": np.greater_equal, "eq": np.equal, "ne": np.not_equal,
}  # fmt: skip


# -- running every protocol once per number of parties ---------------------------------------------


def _as_reals(pool_slice):
    """A share of ring integers (frac_bits=0) read as reals with 16 fractional bits: same shares."""
    return sjax.ArithShare(pool_slice.shares, frac_bits=F)


# XLA's backend optimisation level 0 (no LLVM optimisation of the generated code): the same HLO, compiled in
# about two thirds of the time. The protocols are integer arithmetic on uint64, so the results are the same.
COMPILER_OPTIONS = {"xla_backend_optimization_level": 0}


@functools.partial(jax.jit, static_argnames="n", compiler_options=COMPILER_OPTIONS)
def _battery(x, y, x_small, y_small, condition, y_public, y_small_public, key, *, n):
    """Every protocol of the module on the cases: name -> share. One sharing, sliced."""
    keys = iter(jax.random.split(key, 32))
    pool = sjax.share(jnp.concatenate([x, y, x_small, y_small, condition << F]), next(keys), n, frac_bits=0)
    xs, ys, xs_small, ys_small, cs = (_as_reals(pool[i * N_CASES : (i + 1) * N_CASES]) for i in range(5))
    cb = condition.astype(bool)
    out = {}
    for name in COMPARISONS:
        out[name] = getattr(sjax, name)(xs, ys, next(keys))
    # Public operands: each comparison once with the public value on one side, both sides covered.
    for name, op in [("lt", sjax.lt), ("le", sjax.le), ("eq", sjax.eq)]:
        out[f"{name}(x, public y)"] = op(xs, y_public, next(keys))
    for name, op in [("gt", sjax.gt), ("ge", sjax.ge), ("ne", sjax.ne)]:
        out[f"{name}(public y, x)"] = op(y_public, xs, next(keys))
    out["sign"] = sjax.sign(xs, next(keys))
    out["abs"] = sjax.abs(xs, next(keys))
    out["relu"] = sjax.relu(xs, next(keys))
    out["maximum"] = sjax.maximum(xs, ys, next(keys))
    out["minimum"] = sjax.minimum(xs, ys, next(keys))
    out["maximum(x, public y)"] = sjax.maximum(xs, y_public, next(keys))
    out["minimum(public y, x)"] = sjax.minimum(y_public, xs, next(keys))
    # where with a secret 0.0/1.0 condition, inside the product domain |a - b| < 2^30 ...
    out["where(c, x, y) small"] = sjax.where(cs, xs_small, ys_small, next(keys))
    out["where(c, public y, x) small"] = sjax.where(cs, y_small_public, xs_small, next(keys))
    # ... and over the whole comparison domain.
    out["where(c, x, y)"] = sjax.where(cs, xs, ys, next(keys))
    # where with a public boolean condition: local and exact everywhere.
    out["where(public c, x, y)"] = sjax.where(cb, xs, ys, next(keys))
    out["where(public c, x, public y)"] = sjax.where(cb, xs, y_public, next(keys))
    out["where(public c, public y, x)"] = sjax.where(cb, y_public, xs, next(keys))
    return out


@pytest.fixture(scope="module", params=[2, 3], ids=["2-parties", "3-parties"])
def results(request):
    """(n, name -> share): the battery's results for ``n`` parties, computed once per module."""
    n = request.param
    # Module-scoped fixtures are set up outside the function-scoped checker of conftest.py: turn it on here.
    with jax.debug_key_reuse(True):
        out = _battery(X, Y, X_SMALL, Y_SMALL, COND, Y_PUBLIC, Y_SMALL_PUBLIC, jax.random.key(7 + n), n=n)
    return n, jax.device_get(out)


def opened(share):
    """The exact ring value of a share: the sum of the parties' shares modulo 2^64, as int64."""
    return np.asarray(share.shares).sum(axis=0, dtype=np.uint64).view(np.int64)


def check_exact(results, name, expected_raw, x=X, y=Y):
    """Asserts that result ``name`` is a 16-bit share for ``n`` parties holding exactly ``expected_raw``."""
    n, out = results
    share = out[name]
    assert isinstance(share, sjax.ArithShare), name
    assert (share.n_parties, share.frac_bits, share.shape) == (n, F, expected_raw.shape), name
    got = opened(share)
    bad = np.flatnonzero(got != expected_raw)
    assert bad.size == 0, (
        f"{name}, {n} parties: {bad.size} wrong, e.g. x={x[bad[:4]]}, y={y[bad[:4]]} (raw): "
        f"got {got[bad[:4]]}, expected {expected_raw[bad[:4]]}"
    )


def bits(expected_bool):
    """Raw encoding of a 0/1 result: exactly 0 or 2^16."""
    return expected_bool.astype(np.int64) << F


# -- comparisons -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(COMPARISONS))
def test_comparison_of_two_secrets_is_exactly_zero_or_one(results, name):
    check_exact(results, name, bits(COMPARISONS[name](X, Y)))


@pytest.mark.parametrize("name", ["lt", "le", "eq"])
def test_comparison_with_a_public_right_operand(results, name):
    check_exact(results, f"{name}(x, public y)", bits(COMPARISONS[name](X, Y)))


@pytest.mark.parametrize("name", ["gt", "ge", "ne"])
def test_comparison_with_a_public_left_operand(results, name):
    # op(public y, x): the operands are swapped with respect to the secret-secret cases.
    check_exact(results, f"{name}(public y, x)", bits(COMPARISONS[name](Y, X)))


# Each comparison as a set of the hand-written orders for which it holds.
HOLDS = {"lt": "<", "le": "<=", "gt": ">", "ge": ">=", "eq": "=", "ne": "<>"}


@pytest.mark.parametrize("name", list(COMPARISONS))
def test_edge_cases_against_the_orders_written_by_hand(results, name):
    # The same edge cases, checked against the table rather than numpy.
    _, out = results
    expected = np.array([order in HOLDS[name] for _, _, order in EDGES])
    np.testing.assert_array_equal(opened(out[name])[: len(EDGES)], bits(expected))


def test_revealed_comparison_is_exactly_zero_or_one(results):
    _, out = results
    revealed = np.asarray(sjax.reveal(out["lt"]))
    assert revealed.dtype == np.float64
    np.testing.assert_array_equal(revealed, (X < Y).astype(np.float64))


# -- sign, abs, relu -------------------------------------------------------------------------------


def test_sign_is_exact(results):
    check_exact(results, "sign", np.sign(X) << F)


def test_abs_is_exact(results):
    check_exact(results, "abs", np.abs(X))


def test_relu_is_exact(results):
    check_exact(results, "relu", np.maximum(X, 0))


# -- maximum, minimum ------------------------------------------------------------------------------


def test_maximum_and_minimum_of_two_secrets(results):
    check_exact(results, "maximum", np.maximum(X, Y))
    check_exact(results, "minimum", np.minimum(X, Y))


def test_maximum_and_minimum_with_public_operands(results):
    check_exact(results, "maximum(x, public y)", np.maximum(X, Y))
    check_exact(results, "minimum(public y, x)", np.minimum(Y, X))


# -- where -----------------------------------------------------------------------------------------


def test_where_secret_condition(results):
    check_exact(results, "where(c, x, y) small", np.where(COND == 1, X_SMALL, Y_SMALL), X_SMALL, Y_SMALL)
    check_exact(
        results, "where(c, public y, x) small", np.where(COND == 1, Y_SMALL, X_SMALL), X_SMALL, Y_SMALL
    )


def test_where_secret_condition_over_the_comparison_domain(results):
    # Selection must be exact for any two values a comparison can order (|a - b| < 2^47), as maximum and
    # minimum are: e.g. where(lt(x, y), x, y). The documentation of where states no narrower domain.
    check_exact(results, "where(c, x, y)", np.where(COND == 1, X, Y))


def test_where_public_boolean_condition(results):
    check_exact(results, "where(public c, x, y)", np.where(COND == 1, X, Y))
    check_exact(results, "where(public c, x, public y)", np.where(COND == 1, X, Y))
    check_exact(results, "where(public c, public y, x)", np.where(COND == 1, Y, X))


# -- cost ------------------------------------------------------------------------------------------


def secret(n, shape=(8,)):
    """An abstract share (shapes only): cost never needs values."""
    return sjax.ArithShare(jax.ShapeDtypeStruct((n, *shape), jnp.uint64), frac_bits=F)


# name -> (call on (x, y, key), rounds, documented bytes per party and element, for n - 1 = 1). The
# figures hold for sizes that are multiples of 64 (sign bits are computed in blocks of 64 elements).
COSTS = {
    "lt": (lambda x, y, k: sjax.lt(x, y, k), 8, 38.125),
    "le public": (lambda x, y, k: sjax.le(x, 0.5, k), 8, 38.125),
    "gt": (lambda x, y, k: sjax.gt(x, y, k), 8, 38.125),
    "ge public-left": (lambda x, y, k: sjax.ge(0.5, y, k), 8, 38.125),
    "eq": (lambda x, y, k: sjax.eq(x, y, k), 8, 76.25),
    "ne": (lambda x, y, k: sjax.ne(x, y, k), 8, 76.25),
    "sign": (lambda x, y, k: sjax.sign(x, k), 8, 76.25),
    "abs": (lambda x, y, k: sjax.abs(x, k), 9, 54.125),
    "relu": (lambda x, y, k: sjax.relu(x, k), 9, 54.125),
    "maximum": (lambda x, y, k: sjax.maximum(x, y, k), 9, 54.125),
    "minimum public": (lambda x, y, k: sjax.minimum(x, 1.0, k), 9, 54.125),
}


@pytest.mark.parametrize("n", [2, 3])
@pytest.mark.parametrize("name", list(COSTS))
def test_cost_rounds_and_bytes(keys, name, n):
    call, rounds, per_element = COSTS[name]
    cost = sjax.cost(call)(secret(n, (128,)), secret(n, (128,)), keys())
    assert cost.rounds == rounds
    assert cost.bytes_per_party == per_element * (n - 1) * 128


def test_a_partial_block_costs_as_a_whole_one(keys):
    # 1 and 64 elements: one block of the sign circuit each; 65 elements take two.
    def sent(size):
        return sjax.cost(sjax.lt)(secret(2, (size,)), secret(2, (size,)), keys()).bytes_per_party

    assert sent(64) - sent(1) == 63 * 8  # only the opened difference grows with the size
    assert sent(65) - sent(64) == 8 + 241 * 8  # a second block: 240 AND openings and a B2A word


def test_where_cost(keys):
    # Secret condition: the rounds of mul (open d, e; then the truncation). Public condition: local.
    assert sjax.cost(sjax.where)(secret(3), secret(3), secret(3), keys()).rounds == 2
    public = sjax.cost(sjax.where)(np.ones(8, bool), secret(3), secret(3), keys())
    assert (public.rounds, public.bytes_per_party, public.dealer_bytes) == (0, 0, 0)


# -- keys and bad input ----------------------------------------------------------------------------


def test_a_comparison_consumes_its_key(keys):
    # Two comparisons with one key would open c = x - r twice with the same r.
    def twice(x, key):
        return sjax.lt(x, 0.0, key), sjax.lt(x, 1.0, key)

    with pytest.raises(jax.errors.KeyReuseError):
        jax.jit(twice).lower(secret(2), keys())


@pytest.fixture(scope="module")
def small_shares():
    """Shares of zeros (every share zero: a valid sharing) of shape (3,): 2 parties, 3 parties, and 2
    parties with frac_bits=8. Errors are raised before any value is looked at."""
    return (
        sjax.ArithShare(jnp.zeros((2, 3), jnp.uint64)),
        sjax.ArithShare(jnp.zeros((3, 3), jnp.uint64)),
        sjax.ArithShare(jnp.zeros((2, 3), jnp.uint64), frac_bits=8),
    )


@pytest.mark.parametrize(
    "op",
    [sjax.lt, sjax.le, sjax.gt, sjax.ge, sjax.eq, sjax.ne, sjax.maximum, sjax.minimum],
    ids=lambda f: f.__name__,
)
def test_two_public_operands_are_a_type_error(keys, op):
    with pytest.raises(TypeError, match=f"{op.__name__} needs at least one ArithShare"):
        op(np.ones(3), np.zeros(3), keys())


@pytest.mark.parametrize("op", [sjax.sign, sjax.abs, sjax.relu])
def test_unary_of_a_non_share_is_a_type_error(keys, op, small_shares):
    with pytest.raises(TypeError, match=f"{op.__name__} takes an ArithShare"):
        op(np.ones(3), keys())
    with pytest.raises(TypeError, match=f"{op.__name__} takes an ArithShare"):
        op(sjax.BinShare(small_shares[0].shares), keys())


def test_mismatched_shares_are_value_errors(keys, small_shares):
    s2, s3, s2_8 = small_shares
    with pytest.raises(ValueError, match="2 parties and shares of 3 parties"):
        sjax.lt(s2, s3, keys())
    with pytest.raises(ValueError, match="frac_bits=16 and frac_bits=8"):
        sjax.maximum(s2, s2_8, keys())
    with pytest.raises(ValueError, match="parties"):
        sjax.where(s2, s3, 0.0, keys())
    with pytest.raises(TypeError, match="ArithShare and a BinShare"):
        sjax.eq(s2, sjax.BinShare(s2.shares), keys())


def test_where_rejects_a_non_boolean_public_condition(keys, small_shares):
    s2 = small_shares[0]
    for condition in (np.array([1, 0, 1]), np.array([1.0, 0.0, 1.0])):
        with pytest.raises(TypeError, match="public condition must be boolean"):
            sjax.where(condition, s2, 0.0, keys())


def test_where_without_any_share_is_a_type_error(keys):
    with pytest.raises(TypeError, match="where needs at least one ArithShare"):
        sjax.where(np.array([True]), 1.0, 0.0, keys())


def test_a_non_key_is_a_type_error(small_shares):
    with pytest.raises(TypeError, match="must be a JAX PRNG key"):
        sjax.lt(small_shares[0], 0.0, 3)
