"""The Celery executor (scheduler side) and `dagrunner worker` (worker side), issue #13.

- `messages`: what crosses the broker, as JSON (never pickle, never code) and validated on receipt;
- `app`: the Celery app both sides build from settings (a missing `celery` or broker URL is one clear error);
- `executor`: `CeleryExecutor`, the scheduler's side: sends tries, hears their ends on its event queue;
- `worker`: the task handler of a `dagrunner worker`: runs tries in the local executor's warm workers;
- `logserver`: a worker's read-only HTTP server of its try logs, and the client `tasks logs` uses.

docs/celery.md is the operator's guide.
"""
