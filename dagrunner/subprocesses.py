"""Starting helper processes (DAG-file importers, executor workers) from a forkserver safely and cheaply.

multiprocessing's forkserver and spawn start methods re-run the parent's `__main__` script in every
child before the target runs. For the `dagrunner` console script that costs an import of the whole CLI per
child, and for a user's script without an `if __name__ == "__main__":` guard it runs their code again (or
fails). Our children need nothing from `__main__`, so it is hidden while a child's preparation data is
taken.
"""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from multiprocessing.context import ForkServerContext, SpawnContext
from multiprocessing.process import BaseProcess

_lock = threading.Lock()

#: What the one forkserver imports up front, so DAG-file importers and executor workers start warm.
#: Shared because whichever user starts the forkserver first decides what it preloads.
FORKSERVER_PRELOAD = (
    "dagrunner.authoring",
    "dagrunner.operators",
    "dagrunner.loading.serialization",
    "dagrunner.execution.worker",
    "pendulum",
    "networkx",
    "sqlalchemy",
    "jinja2",
)


@contextmanager
def _main_hidden() -> Iterator[None]:
    main = sys.modules.get("__main__")
    if main is None:
        yield
        return
    with _lock:
        saved_spec = getattr(main, "__spec__", None)
        had_file = hasattr(main, "__file__")
        saved_file = getattr(main, "__file__", None)
        main.__spec__ = None
        if had_file:
            del main.__file__
        try:
            yield
        finally:
            main.__spec__ = saved_spec
            if had_file:
                main.__file__ = saved_file


#: How often a start that the forkserver's death broke is tried again (each finds the forkserver dead and
#: starts a new one), and how long to let the dead one be reaped first.
START_ATTEMPTS = 3
_START_RETRY_S = 0.05


def start_process(process: BaseProcess) -> None:
    """`process.start()` without re-running `__main__` in the child.

    A forkserver that dies while it forks for us (killed, OOM) breaks the start with EOFError or a
    connection error; multiprocessing starts a new forkserver on the next start, so the start is tried
    again (`START_ATTEMPTS`) rather than taking the scheduler down with it (seen in `benchmarks.soak`).
    """
    for attempt in range(1, START_ATTEMPTS + 1):
        try:
            with _main_hidden():
                process.start()
            return
        except (EOFError, ConnectionError):
            if attempt == START_ATTEMPTS or getattr(process, "_popen", None) is not None:
                raise
            time.sleep(_START_RETRY_S)


def preloaded_context(preload: Sequence[str] = FORKSERVER_PRELOAD) -> ForkServerContext | SpawnContext:
    """A forkserver with `preload` imported once, where the platform has one; else spawn."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(list(preload))
        return ctx
    return multiprocessing.get_context("spawn")


def stop_child(process: subprocess.Popen[bytes] | None, grace_s: float) -> None:
    """SIGTERM a child we started (a scheduler or triggerer), give it `grace_s` to finish what it holds,
    then SIGKILL it; nothing to do when it has already exited."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(grace_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5.0)
