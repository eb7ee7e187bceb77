"""Starting helper processes (DAG-file importers, executor workers) from a forkserver safely and cheaply.

multiprocessing's forkserver and spawn start methods re-run the parent's `__main__` script in every
child before the target runs. For the `dagrunner` console script that costs an import of the whole CLI per
child, and for a user's script without an `if __name__ == "__main__":` guard it runs their code again (or
fails). Our children need nothing from `__main__`, so it is hidden while a child's preparation data is
taken.
"""

from __future__ import annotations

import multiprocessing
import sys
import threading
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


def start_process(process: BaseProcess) -> None:
    """`process.start()` without re-running `__main__` in the child."""
    with _main_hidden():
        process.start()


def preloaded_context(preload: Sequence[str] = FORKSERVER_PRELOAD) -> ForkServerContext | SpawnContext:
    """A forkserver with `preload` imported once, where the platform has one; else spawn."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(list(preload))
        return ctx
    return multiprocessing.get_context("spawn")
