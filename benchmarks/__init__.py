"""dagrunner's benchmark suite: `python -m benchmarks run [W1 ... W6] [--db both] [--repeat 3] [--quick]`.

Every workload drives the real path (generated DAG files, the real CLI and scheduler processes, the
local executor, a fresh database per repetition) and asserts after each repetition that every run
succeeded with exactly one try per task instance. See benchmarks/README.md.
"""
