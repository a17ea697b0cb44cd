"""Tests for :func:`sjax.compiler_options`: the options per backend, and results that do not depend on
them."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sjax


def test_cpu_gets_the_older_fusion_emitters():
    assert sjax.compiler_options("cpu") == {"xla_cpu_use_fusion_emitters": False}
    assert sjax.compiler_options() == sjax.compiler_options(jax.default_backend())


def test_an_absent_backend_is_an_error():
    with pytest.raises(RuntimeError):
        sjax.compiler_options("no-such-backend")


@pytest.mark.parametrize("n", [2, 3])
def test_results_are_bit_identical_with_and_without_them(keys, n):
    # A comparison, an exponential and a product: the same shares, bit for bit, whichever emitters compile
    # them (the suite's XLA_FLAGS pick the older ones; here the newer ones are asked for explicitly).
    x = sjax.share(jnp.linspace(-3.0, 3.0, 70), keys(), n)
    key = keys()

    def program(x, key):
        k1, k2, k3 = jax.random.split(key, 3)
        return sjax.relu(x, k1), sjax.exp(x, k2), sjax.mul(x, x, k3)

    newer = jax.jit(program, compiler_options={"xla_cpu_use_fusion_emitters": True})(x, key)
    advised = jax.jit(program, compiler_options=sjax.compiler_options())(x, jax.random.clone(key))
    for a, b in zip(newer, advised):
        np.testing.assert_array_equal(np.asarray(a.shares), np.asarray(b.shares))
