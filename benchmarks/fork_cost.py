"""What one fork and the child's exit cost, by what the forking process has imported.

    python -m benchmarks.fork_cost [--n 200] [MODULE[,MODULE...] ...]

Each argument is a comma-separated set of modules; for each set a fresh interpreter imports them, then
forks `--n` children that exit at once (`os._exit(0)`) and are reaped one by one. It prints the
interpreter's anonymous and total resident memory and, per fork, the wall time and the kernel CPU time
of the parent (the fork: copying page tables) and of the children (their exit: tearing them down).
On a virtual machine both grow with the parent's anonymous memory, which is why the local executor
forks task processes from a lean forker (docs/performance.md). With no argument it compares bare
Python, the modules a lean forker holds, and those a worker holds.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

DEFAULT_SETS = ("", "dagrunner.operators", "dagrunner.operators,dagrunner.execution.worker")


def measure(n: int) -> dict[str, float]:
    """Fork `n` children from this process; per-fork figures in ms, memory in MB."""
    self0, kids0 = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    for _ in range(n):
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
    wall = time.perf_counter() - start
    self1, kids1 = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    with open("/proc/self/status") as handle:
        status = dict(line.split(":", 1) for line in handle if line.startswith(("RssAnon", "VmRSS")))
    return {
        "anon_mb": int(status["RssAnon"].split()[0]) / 1024,
        "rss_mb": int(status["VmRSS"].split()[0]) / 1024,
        "wall_ms": wall * 1000 / n,
        "parent_sys_ms": (self1.ru_stime - self0.ru_stime) * 1000 / n,
        "child_sys_ms": (kids1.ru_stime - kids0.ru_stime) * 1000 / n,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fork_cost", description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="forks per module set")
    parser.add_argument("--child", help=argparse.SUPPRESS)  # internal: measure in this interpreter
    parser.add_argument("sets", nargs="*", default=list(DEFAULT_SETS))
    args = parser.parse_args(argv)
    if args.child is not None:
        for module in filter(None, args.child.split(",")):
            __import__(module)
        print(json.dumps(measure(args.n)))
        return 0
    print(f"{'imported':60s} {'anon MB':>8} {'wall ms':>8} {'fork sys':>9} {'exit sys':>9}")
    for modules in args.sets:
        out = subprocess.run(
            [sys.executable, "-m", "benchmarks.fork_cost", "--n", str(args.n), "--child", modules],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        row = json.loads(out.stdout)
        print(f"{modules or '(bare python)':60s} {row['anon_mb']:8.1f} {row['wall_ms']:8.2f} "
              f"{row['parent_sys_ms']:9.2f} {row['child_sys_ms']:9.2f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
