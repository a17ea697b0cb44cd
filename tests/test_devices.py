"""Shares placed on a devices mesh: the core and comparison protocols, a few nonlinear functions and a
training step under ``jax.shard_map``, bit-identical to simulation, each party's row on its own device.

``tests/devices_check.py`` does the work in a process of its own (its CPU devices exist only if
``XLA_FLAGS=--xla_force_host_platform_device_count=4`` is set before JAX starts, which this process is
past); see its docstring. The placement API's errors are checked here, in this process.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import pytest

import sjax

CHECK = Path(__file__).with_name("devices_check.py")
TIMEOUT_S = 1500


@pytest.mark.slow
def test_protocols_on_devices_match_simulation_bit_for_bit():
    flags = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4"
    env = dict(os.environ, XLA_FLAGS=flags.strip(), JAX_PLATFORMS="cpu")
    try:
        result = subprocess.run(
            [sys.executable, str(CHECK), "2", "3"],
            env=env,
            cwd=CHECK.parent.parent,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
        )
    except subprocess.TimeoutExpired as error:
        pytest.fail(f"{CHECK.name} ran past {TIMEOUT_S} s:\n{error.stdout}\n{error.stderr}")
    report = f"exit status {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr[-6000:]}"
    assert result.returncode == 0, report
    assert "ALL OK" in result.stdout, report
    for n in (2, 3):
        assert f"{n} parties: a training step is bit-identical to simulation" in result.stdout, report


def test_a_mesh_must_match_the_party_count(keys):
    mesh = jax.make_mesh((1,), ("party",), axis_types=(jax.sharding.AxisType.Explicit,))
    with pytest.raises(ValueError, match="n_parties=2, but the mesh's party axis has 1 devices"):
        sjax.share(jnp.ones(3), keys(), 2, mesh=mesh)
    other = jax.make_mesh((1,), ("x",))
    with pytest.raises(ValueError, match="axis named 'party'"):
        sjax.share(jnp.ones(3), keys(), 1 + 1, mesh=other)


def test_party_mesh_names_the_missing_devices():
    with pytest.raises(ValueError, match="xla_force_host_platform_device_count=64"):
        sjax.parallel.party_mesh(64)


def test_simulated_shares_are_not_placed(keys):
    x = sjax.share(jnp.ones(3), keys(), 3)
    assert sjax.parallel.mesh_of(x.shares) is None
    assert sjax.parallel.party_index() is None  # no processes runner in this process
