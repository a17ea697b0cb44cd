"""Smoke tests of the examples on real data: each runs end to end with tiny settings (128 examples).

They run in this process (under the suite's key-reuse checker, see conftest.py) through each example's
``run``, with ``--xla-opt0`` (the encrypted program compiles in about half the time; it runs only a few
steps here). Most of each test's time is that compile.
"""

from __future__ import annotations

import pathlib
import sys

import numpy as np
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "examples"))

import infer_cnn  # noqa: E402
import joint_statistics  # noqa: E402
import train_logreg  # noqa: E402
import train_mlp  # noqa: E402

TINY = ["--limit", "128", "--no-progress", "--xla-opt0"]


def _check_training(figures: dict) -> None:
    plain, secure = figures["plaintext"], figures["encrypted"]
    # Same initial weights, same first batch: the first losses agree to the fixed-point precision.
    assert abs(float(secure.losses[0][0]) - float(plain.losses[0][0])) < 1e-3
    assert np.all(np.isfinite(secure.losses[-1]))
    assert abs(secure.accuracy - plain.accuracy) <= 0.05
    assert secure.compile.total_s > 0 and secure.seconds_per_epoch > 0
    assert figures["cost"].rounds > 0 and figures["cost"].bytes_per_party > 0


@pytest.mark.slow
def test_train_logreg(capsys):
    figures = train_logreg.run(train_logreg.parse_args([*TINY, "--epochs", "1"]))
    _check_training(figures)
    assert "test accuracy" in capsys.readouterr().out


@pytest.mark.slow
def test_train_mlp(capsys):
    figures = train_mlp.run(train_mlp.parse_args([*TINY, "--epochs", "1"]))
    _check_training(figures)
    assert "test accuracy" in capsys.readouterr().out


@pytest.mark.slow
def test_infer_cnn(capsys):
    figures = infer_cnn.run(infer_cnn.parse_args([*TINY, "--epochs", "3"]))
    assert figures["agreement"] >= 0.95
    assert figures["cost"].rounds > 0
    assert "predictions equal to plaintext" in capsys.readouterr().out


def test_joint_statistics_equal_plaintext():
    # The example's computation (run through the launcher in deployment), here simulated for 2 parties on
    # the first 120 rows: every statistic within the example's own tolerances (the correlation's is 2e-4:
    # its 1/rows factor keeps its significant digits, see sjax.shares.public_factor_bits).
    import jax
    from sklearn import datasets

    import sjax

    data = datasets.load_breast_cancer().data[:120, joint_statistics.COLUMNS]
    x = sjax.share(data, jax.random.key(0), n_parties=2)
    results = jax.jit(joint_statistics.joint_statistics)(x, jax.random.key(1))
    want = joint_statistics.plaintext(data)
    for name, value in results.items():
        error = np.abs(np.asarray(sjax.reveal(value)) - want[name]) / np.maximum(1.0, np.abs(want[name]))
        assert error.max() <= joint_statistics.TOLERANCES[name], name
