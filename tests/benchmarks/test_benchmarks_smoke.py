"""The benchmark harness itself works: a --quick run of W1 and W2 on SQLite exits 0 and writes sound JSON.

No timing is asserted here: figures on a shared CI machine mean nothing. The benchmarks assert their own
correctness guards (every run succeeded, one try per task instance), so exit 0 also says that held.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
EXPECTED = {
    "W1": {
        "trigger_to_success_s",
        "tasks_per_s",
        "queued_to_success_s",
        "run_db_s",
        "queued_to_first_start_s",
        "trigger_cli_s",
    },
    "W2": {"gap_median_ms", "gap_p90_ms", "gap_max_ms", "run_wall_s", "queued_to_success_s", "run_db_s"},
}


def test_quick_run_of_w1_and_w2_writes_the_expected_json(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "run", "W1", "W2", "--db", "sqlite", "--repeat", "1", "--quick",
         "--out", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads(out.read_text())

    assert doc["ok"] is True
    assert doc["options"]["quick"] is True and doc["options"]["dbs"] == ["sqlite"]
    assert doc["machine"]["cpu_count"] >= 1 and doc["machine"]["python"]
    assert doc["machine"]["dagrunner_version"]
    assert set(doc["git"]) >= {"commit", "dirty"}
    assert doc["started_at"] and doc["finished_at"]

    results = {r["workload"]: r for r in doc["results"]}
    assert set(results) == set(EXPECTED)
    for name, keys in EXPECTED.items():
        result = results[name]
        assert result["db"] == "sqlite" and result["status"] == "ok", result["error"]
        assert set(result["metrics"]) == keys
        (rep,) = result["repetitions"]
        assert rep["error"] is None
        for key in keys:
            metric = result["metrics"][key]
            assert metric["values"] == [rep["figures"][key]]
            assert metric["median"] > 0, (name, key, metric)
            assert metric["met"] is None  # --quick: sizes differ from the targets', nothing is judged
    assert len(results["W2"]["repetitions"][0]["details"]["gaps_ms"]) == 9  # a chain of 10 under --quick


def test_the_per_try_tool_runs_and_writes_its_figures(tmp_path: Path) -> None:
    """`benchmarks.per_try` drives the executors and the try's DB writes directly: it breaks when their
    APIs change, so it runs here at a tiny size (no figure is judged)."""
    out = tmp_path / "per_try.json"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.per_try", "--runs", "1", "--n", "3", "--tries", "4", "--only", "db,inline",
         "--json", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    figures = json.loads(out.read_text())
    for name in ("inline seq ms/try", "db begin ms", "db finish ms"):
        assert figures[name]["median"] > 0, (name, figures.get(name))
