"""Polynomial approximations, fitted once at import time in float64 (public coefficients)."""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np


@functools.lru_cache(maxsize=None)
def _nodes(low: float, high: float, count: int = 2049) -> np.ndarray:
    # Chebyshev points of the second kind: a least-squares fit on them is close to minimax.
    k = np.arange(count)
    return (low + high) / 2 + (high - low) / 2 * np.cos(np.pi * k / (count - 1))


def fit(function: Callable[[np.ndarray], np.ndarray], low: float, high: float, degree: int) -> tuple[float, ...]:
    """Power-basis coefficients (constant first) of a near-minimax polynomial for ``function`` on an interval."""
    x = _nodes(low, high)
    coefficients = np.polynomial.polynomial.polyfit(x, function(x), degree)
    return tuple(float(c) for c in coefficients)


def max_error(function, coefficients, low: float, high: float) -> float:
    """The largest absolute error of the fitted polynomial on a dense grid (used in tests and docs)."""
    x = np.linspace(low, high, 100_001)
    return float(np.max(np.abs(np.polynomial.polynomial.polyval(x, coefficients) - function(x))))
