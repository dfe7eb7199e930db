"""Runs in parallel worker processes that end with the benchmark.

A :class:`~concurrent.futures.ProcessPoolExecutor` whose workers outlive
their parent when it is killed keeps training queued runs unseen (and
loads the machine under the next measurement). Here each worker asks the
kernel for SIGTERM when its parent dies (Linux ``PR_SET_PDEATHSIG``; run
folders resume), and a SIGTERM to the parent ends the pool's workers too.
"""

from __future__ import annotations

import multiprocessing
import signal
import sys
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from typing import Any, Callable, Hashable, Iterator

PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):           # not Linux: the SIGTERM rule only
        pass


def _stop(signum: int, frame: Any) -> None:
    sys.exit(128 + signum)                      # unwinds into the pool's cleanup


def run_parallel(jobs: dict[Hashable, tuple[Callable, tuple]],
                 workers: int) -> Iterator[tuple[Hashable, Future]]:
    """``(key, future)`` of each job ``key: (function, args)`` as it ends,
    ``workers`` at a time in spawned processes (CUDA needs spawn); the
    future's ``result()`` returns or raises what the job did."""
    context = multiprocessing.get_context("spawn")
    previous = signal.signal(signal.SIGTERM, _stop)
    pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_die_with_parent)
    finished = False
    try:
        futures = {pool.submit(fn, *args): key for key, (fn, args) in jobs.items()}
        for future in as_completed(futures):
            yield futures[future], future
        finished = True
    finally:
        if not finished:                        # stopped: end the running jobs too
            for process in list(getattr(pool, "_processes", {}).values()):
                process.terminate()
        pool.shutdown(wait=True, cancel_futures=True)
        signal.signal(signal.SIGTERM, previous)
