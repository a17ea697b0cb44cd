"""sjax.debug.check_overflow: the first equation that leaves the range, named with the user's line."""

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

import sjax
from sjax.debug import OverflowDetected, check_overflow


def line_of(f, text):
    """The file line of the first line of ``f``'s source that contains ``text``."""
    lines, start = inspect.getsourcelines(f)
    return start + next(i for i, line in enumerate(lines) if text in line)


def scaled(x):
    y = x * 1000.0
    z = y * y  # 1e6 x^2: beyond 2^30 when |x| > 32.8, where the product's truncation stops being exact
    return z.sum()


def doubled(x):
    small = x - 1.0
    big = x + x  # leaves |x| < 2^47 when x > 7.04e13
    return small, big


def compounding(x):
    def year(balance, _):
        return balance * 100.0, None  # the loop's product grows past 2^30 at some iteration

    balance, _ = lax.scan(year, x, None, length=8)
    return balance


def squared_error(w, x):
    return ((x @ w * 0.5 - 1.0) ** 2).mean()


def test_a_product_too_large_is_caught_at_its_line(keys):
    x = sjax.share(jnp.array([1.0, -2.0, 40.0]), keys(), 2)
    with pytest.raises(OverflowDetected) as caught:
        check_overflow(scaled)(x, key=keys())
    finding = caught.value.finding
    assert (finding.primitive, finding.kind) == ("mul", "product")
    assert f"{__file__.rstrip('c')}:{line_of(scaled, 'z = y * y')}" in finding.source
    assert finding.magnitude == pytest.approx(1.6e9, rel=1e-6) and finding.bound == 2.0**30
    assert "too large for exact truncation" in str(caught.value) and "(scaled)" in str(caught.value)


@pytest.mark.parametrize("n", [2, 3])
def test_leaving_the_range_is_caught_and_would_have_wrapped(keys, n):
    x = sjax.share(jnp.array([1.0, 1.2e14]), keys(), n)
    key = keys()
    small, big = sjax.secure(doubled)(x, key=key)
    assert float(sjax.reveal(big)[1]) < 0  # what happens without the check: it wraps around, silently
    with pytest.raises(OverflowDetected, match=r"'add' at .*:%d.* left the representable range" % line_of(doubled, "big =")):
        check_overflow(doubled)(x, key=key)


def test_a_smaller_bound_and_a_loop_body(keys):
    x = sjax.share(jnp.array([0.5, 3.0]), keys(), 2)
    with pytest.raises(OverflowDetected) as caught:
        check_overflow(scaled, bound=2000.0, products=False)(x, key=keys())
    assert caught.value.finding.kind == "range" and f":{line_of(scaled, 'y = x * 1000.0')}:" in caught.value.finding.source
    # Inside lax.scan the values are traced: the equation reports when it runs, the first time it crosses.
    with pytest.raises(OverflowDetected) as caught:
        check_overflow(compounding)(x, key=keys())
    finding = caught.value.finding
    assert finding.primitive == "mul" and f":{line_of(compounding, 'balance * 100.0')}:" in finding.source
    assert finding.magnitude == pytest.approx(3e10)  # 3 * 100^5, the first iteration past 2^30


def test_a_safe_program_passes_bit_identical_to_secure(keys):
    w = sjax.share(jnp.array([0.5, -1.0, 2.0]), keys(), 2)
    x = sjax.share(jnp.arange(12.0).reshape(4, 3) / 10, keys(), 2)
    key = keys()
    checked = check_overflow(squared_error, tolerance=1e-3)(w, x, key=key)
    plain = sjax.secure(squared_error)(w, x, key=jax.random.clone(key))
    np.testing.assert_array_equal(checked.shares, plain.shares)


def test_tolerance_catches_a_function_outside_its_domain(keys):
    x = sjax.share(jnp.array([1.0, 25.0]), keys(), 2)  # exp is accurate on [-16, 16], saturates beyond
    with pytest.raises(OverflowDetected, match=r"'exp' at .* differs from its plaintext value"):
        check_overflow(jnp.exp, tolerance=1e-3)(x, key=keys())


def test_bad_use(keys):
    x = sjax.share(jnp.ones(2), keys(), 2)
    with pytest.raises(ValueError, match="bound must be positive"):
        check_overflow(scaled, bound=0.0)
    with pytest.raises(TypeError, match="do not call it under jax.jit"):
        jax.jit(lambda x, k: check_overflow(scaled)(x, key=k))(x, keys())
