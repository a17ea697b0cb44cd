"""Smoke test of benchmarks/ops.py: one cheap workload end to end, and every workload's definition."""

import importlib.util
import json
import pathlib
import sys

import jax
import numpy as np
import pytest

import sjax

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def ops():
    spec = importlib.util.spec_from_file_location("benchmarks_ops", ROOT / "benchmarks" / "ops.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


def test_ops_runs_mul_and_writes_json(ops, tmp_path, capsys):
    out = tmp_path / "ops.json"
    report = ops.main(["--only", "mul", "--parties", "2", "--repeats", "2", "--json", str(out)])
    printed = capsys.readouterr().out
    assert "backend cpu" in printed and "mul 1e5" in printed and "SPU 2PC" in printed
    saved = json.loads(out.read_text())
    assert saved["machine"]["backend"] == jax.default_backend()
    (result,) = saved["results"]
    assert result == json.loads(json.dumps(report["results"][0]))
    assert result["workload"] == "mul" and result["parties"] == 2 and len(result["times_s"]) == 2
    assert result["seconds"] > 0 and result["compile_s"] > 0 and result["plain_seconds"] > 0
    assert result["cost"]["rounds"] == 2 and result["cost"]["bytes_per_party"] > 0
    assert result["max_error"] < 1e-3
    assert set(result["targets"]) == {"5x_faster_than_spu", "compile_under_20_s"}
    assert result["memory"]["process_peak_rss_mb"] > 0


SLOW = pytest.mark.slow  # compiles for 20-45 s


@pytest.mark.parametrize("name", ["matmul", pytest.param("mlp", marks=SLOW), pytest.param("softmax", marks=SLOW)])
def test_workload_definitions_match_plaintext(ops, name, keys):
    # The secure function of a workload, revealed, is its plaintext function (within fixed-point error).
    w = ops.build_workload(name, 3, keys())
    got = np.asarray(sjax.reveal(jax.jit(w.fn)(*w.args, keys())))
    want = np.asarray(w.plain_fn(*(np.asarray(a, np.float64) for a in w.plain_args)))
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=1e-3)


def test_every_workload_has_inputs_and_anchors(ops):
    assert set(ops.ANCHORS) == set(ops.WORKLOADS) == set(ops.DESCRIPTIONS)
    for name in ops.WORKLOADS:
        assert all(np.all(np.isfinite(x)) for x in ops.plaintext_inputs(name))
    with pytest.raises(SystemExit):
        ops.parse_args(["--only", "conv"])
