"""Independent training jobs side by side in worker processes (student seeds, ranker models x seeds).

Why: a small model trains best on one torch thread (two threads burned 2.6x the CPU for the same
steps on a 2-core machine), so the cores are filled by running jobs next to each other instead.
Every job writes its own folder atomically and resumes from its own checkpoints, so the result is
the serial run's, whatever the order jobs finish in.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Any

from llm2ctr.errors import ConfigError

log = logging.getLogger(__name__)


def resolve_workers(workers: int) -> int:
    """``workers`` > 0 as given; 0 = one per CPU core this process may use."""
    if workers < 0:
        raise ConfigError(f"workers={workers}: expected 0 (one per CPU core) or a positive number of processes")
    if workers > 0:
        return workers
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run a job on ``n`` torch threads (0: leave the count alone), restoring the count after it:
    a job run inline must not change the threads of the stages after it."""
    import torch

    before = torch.get_num_threads()
    if n > 0:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _init_worker(level: int) -> None:
    """Log lines (and warnings) go to the terminal; progress bars, drawn on ``sys.stderr``, do not:
    two workers' bars would overwrite each other, so the parent draws one bar over the jobs."""
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S",
                        stream=sys.stderr)
    logging.captureWarnings(True)
    sys.stderr = open(os.devnull, "w")  # noqa: SIM115 (the worker's whole life)


def run_jobs(fn: Callable[..., Any], jobs: Sequence[tuple], labels: Sequence[str], workers: int,
             desc: str) -> list[Any]:
    """``[fn(*job) for job in jobs]``, in order; with ``workers`` > 1, in that many spawned processes.

    ``fn`` must be a module-level function (it is pickled by name). Submit the longest jobs first:
    workers take jobs in order, so a long job started last would leave a core idle at the end. The
    first job that raises cancels the jobs not yet started (the running ones finish) and is
    re-raised here.
    """
    n = min(resolve_workers(workers), len(jobs))
    if n <= 1:
        return [fn(*job) for job in jobs]
    from tqdm.auto import tqdm

    results: list[Any] = [None] * len(jobs)
    ctx = multiprocessing.get_context("spawn")  # fork would copy torch's thread pools mid-use
    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=n, mp_context=ctx, initializer=_init_worker,
                             initargs=(logging.getLogger().getEffectiveLevel(),)) as pool:
        futures = {pool.submit(fn, *job): i for i, job in enumerate(jobs)}
        pending = set(futures)
        with tqdm(total=len(jobs), desc=f"{desc} ({n} workers)", unit="job") as bar:
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    i = futures[fut]
                    if fut.exception() is not None:
                        for other in pending:
                            other.cancel()
                        raise fut.exception()
                    results[i] = fut.result()
                    bar.update(1)
                    bar.write(f"[{desc}] {labels[i]} done ({time.perf_counter() - t0:.0f}s)")
    return results
