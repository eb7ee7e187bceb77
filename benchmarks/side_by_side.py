"""Two commits, the same workloads, alternating, with the rest of the machine's CPU use recorded.

    python -m benchmarks.side_by_side OLD_CHECKOUT NEW_CHECKOUT [--pairs 5] [--workloads W1 W2] [--db sqlite]

Each checkout needs its own `.venv` (`pip install -e '.[test]'`). A pair runs one repetition of each
workload on the old checkout, then on the new one (the order flips every pair, so a drift in machine load
does not favour one side). Around every repetition it reads every process's CPU time from /proc; what the
processes not of this checkout (their command line does not name it: every dagrunner process of the
benchmark runs the checkout's `.venv` python) used, as a share of the wall time of all cores, is the
*other* processes' share.
Repetitions whose other share exceeds `--max-other` are reported but left out of the medians: on this
2-core machine the same commit reads 2-4x slower under load. Prints one line per repetition and, per
metric, the medians and the ratio new/old.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

METRICS = {
    "W1": ("tasks_per_s", "trigger_to_success_s"),
    "W2": ("gap_median_ms", "gap_p90_ms", "run_db_s"),
}


def _cpu_by_process() -> dict[tuple[int, int], tuple[float, str]]:
    """(pid, start time) -> (CPU seconds so far, command line) of every process on the machine."""
    hz = os.sysconf("SC_CLK_TCK")
    out: dict[tuple[int, int], tuple[float, str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # it ended meanwhile
        fields = stat[stat.rindex(")") + 2 :].split()
        out[(int(entry.name), int(fields[19]))] = ((int(fields[11]) + int(fields[12])) / hz, cmdline)
    return out


def _others_cpu(before: dict[tuple[int, int], tuple[float, str]], after: dict[tuple[int, int], tuple[float, str]],
                ours: str) -> float:  # fmt: skip
    """CPU seconds that processes other than ours (command line mentioning `ours`) used between the two
    snapshots. A process that started and ended in between is not seen: on a quiet machine those are
    our own short-lived ones (task processes, CLI commands)."""
    used = 0.0
    for key, (cpu, cmdline) in after.items():
        if ours in cmdline:
            continue
        used += cpu - before.get(key, (0.0, ""))[0]
    return used


def _one(checkout: Path, workload: str, db: str) -> tuple[dict[str, float], float]:
    """(metric -> value, other processes' CPU share) of one repetition of `workload` in `checkout`."""
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "r.json"
        before, t0 = _cpu_by_process(), time.monotonic()
        subprocess.run(
            [str(checkout / ".venv/bin/python"), "-m", "benchmarks", "run", workload, "--db", db, "--repeat", "1",
             "--out", str(out)],
            cwd=checkout, check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        after, t1 = _cpu_by_process(), time.monotonic()
        other = _others_cpu(before, after, str(checkout)) / ((t1 - t0) * cores)
        [result] = json.loads(out.read_text())["results"]
    if result["status"] != "ok":
        raise SystemExit(f"{workload} on {checkout} failed: {result['error']}")
    return {name: result["metrics"][name]["values"][0] for name in METRICS[workload]}, other


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old", type=Path)
    parser.add_argument("new", type=Path)
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--workloads", nargs="+", default=["W1", "W2"], choices=sorted(METRICS))
    parser.add_argument("--db", default="sqlite", choices=["sqlite", "postgres"])
    parser.add_argument("--max-other", type=float, default=0.10, help="largest other-CPU share kept (0.10 = 10%%)")
    args = parser.parse_args()
    kept: dict[tuple[str, str, str], list[float]] = {}
    for pair in range(args.pairs):
        sides = [("old", args.old), ("new", args.new)]
        for side, checkout in sides if pair % 2 == 0 else sides[::-1]:
            for workload in args.workloads:
                values, other = _one(checkout, workload, args.db)
                keep = other <= args.max_other
                shown = " ".join(f"{k}={v:.4g}" for k, v in values.items())
                print(
                    f"pair {pair} {side} {workload}: {shown} other-cpu={other:.1%}{'' if keep else ' (contended: left out)'}"
                )
                if keep:
                    for name, value in values.items():
                        kept.setdefault((workload, name, side), []).append(value)
    print()
    for workload in args.workloads:
        for name in METRICS[workload]:
            old, new = kept.get((workload, name, "old"), []), kept.get((workload, name, "new"), [])
            if not old or not new:
                print(f"{workload} {name}: not enough quiet repetitions")
                continue
            m_old, m_new = statistics.median(old), statistics.median(new)
            print(
                f"{workload} {name}: old {m_old:.4g} (n={len(old)}), new {m_new:.4g} (n={len(new)}), new/old {m_new / m_old:.2f}"
            )


if __name__ == "__main__":
    main()
