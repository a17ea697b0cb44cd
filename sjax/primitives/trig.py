"""sin and cos by exact reduction modulo the period and two angle doublings.

``t = x / (2 pi)`` is computed at 29 fractional bits; its fractional part ``r`` is ``t`` minus its
truncation to an integer. The truncation may round up instead of down (stochastic rounding), which moves
``r`` by exactly one period, so ``r`` lies in ``(-1, 1)`` and ``sin(2 pi r) = sin(x)`` either way. A
quarter of the angle, ``pi r / 2`` in ``(-pi/2, pi/2)``, goes through two polynomials of degree 12 that
share their powers (errors below 1e-12); two doublings (``sin 2a = 2 sin a cos a``,
``cos 2a = 2 cos^2 a - 1``) give the full angle. The error does not grow with ``|x|`` inside the domain.

Leakage: none.
"""

from __future__ import annotations

import math

import jax
import numpy as np

from sjax import randomness
from sjax.primitives import fixed
from sjax.primitives._fit import fit
from sjax.primitives._unary import run_unary
from sjax.primitives.truncation import truncate_body
from sjax.shares import ArithShare

__all__ = ["sin", "cos", "sin_cos_body", "TRIG_DOMAIN"]

_SCALE = 29
_FACTOR_BITS = 36
_SIN_QUARTER = fit(lambda r: np.sin(np.pi * r / 2), -1.0, 1.0, 12)
_COS_QUARTER = fit(lambda r: np.cos(np.pi * r / 2), -1.0, 1.0, 12)


def trig_domain(frac_bits: int) -> float:
    """The bound on ``|x|`` below which the reduction is exact: ``2 pi 2^(26 - f)``."""
    return 2 * math.pi * 2.0 ** (62 - frac_bits - _FACTOR_BITS) * 0.999


TRIG_DOMAIN = trig_domain(16)
"""``|x|`` bound for 16 fractional bits (about 6430)."""


def sin_cos_body(x: jax.Array, key: jax.Array, *, frac_bits: int) -> tuple[jax.Array, jax.Array]:
    """One party's shares of ``(sin x, cos x)`` at scale ``frac_bits``. 16 rounds."""
    t_key, floor_key, poly_key, first_key, second_key, out_key = randomness.split(key, 6)
    t = fixed.public_scale(
        x, 1.0 / (2.0 * math.pi), t_key, in_scale=frac_bits, out_scale=_SCALE, factor_bits=_FACTOR_BITS
    )
    whole = truncate_body(t, floor_key, bits=_SCALE)
    r = t - (whole << np.uint64(_SCALE))  # in (-1, 1) at 29 bits
    s, c = fixed.polynomials(r, [_SIN_QUARTER, _COS_QUARTER], poly_key, scale=_SCALE)
    for doubling_key in (first_key, second_key):
        sc, cc = fixed.mul_many([(s, c), (c, c)], doubling_key, shift=_SCALE)
        s = sc * np.uint64(2)
        c = cc * np.uint64(2) - fixed.constant(1.0, _SCALE, x.shape)
    both = fixed.rescale(jax.numpy.stack([s, c]), out_key, from_scale=_SCALE, to_scale=frac_bits)
    return both[0], both[1]


def _sin_body(x, key, *, frac_bits):
    return sin_cos_body(x, key, frac_bits=frac_bits)[0]


def _cos_body(x, key, *, frac_bits):
    return sin_cos_body(x, key, frac_bits=frac_bits)[1]


def sin(x: ArithShare, key: jax.Array) -> ArithShare:
    """Elementwise sine.

    Domain: ``|x| < 2 pi 2^(26 - f)`` (about 6430 for 16 bits; the target ``[-100, 100]`` is inside).
    Beyond it the reduction overflows and the result is finite but meaningless.
    Error: absolute, below ``2^-f``.
    Cost: 16 rounds; each party sends ``408 * (n - 1)`` bytes per element; the dealer
    sends ``456`` bytes per element.
    """
    return run_unary("sin", _sin_body, x, key)


def cos(x: ArithShare, key: jax.Array) -> ArithShare:
    """Elementwise cosine. Domain, error and cost as :func:`sin`."""
    return run_unary("cos", _cos_body, x, key)
