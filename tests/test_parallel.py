"""run_jobs: results in job order from spawned workers, a worker's error re-raised with its class."""

from __future__ import annotations

import math

import pytest

from llm2ctr.errors import ConfigError
from llm2ctr.parallel import resolve_workers, run_jobs


def test_results_come_back_in_job_order_from_two_workers():
    jobs = [(n,) for n in (12, 3, 7, 1, 9)]
    assert run_jobs(math.factorial, jobs, [str(j[0]) for j in jobs], 2, "test") == [math.factorial(n) for n, in jobs]


def test_a_failing_job_raises_its_own_error_class_in_the_parent():
    # resolve_workers(-1) raises ConfigError inside the worker process
    with pytest.raises(ConfigError, match="workers=-1"):
        run_jobs(resolve_workers, [(1,), (-1,)], ["ok", "bad"], 2, "test")


def test_one_worker_runs_inline_and_negative_counts_are_refused():
    assert run_jobs(math.factorial, [(3,), (4,)], ["a", "b"], 1, "test") == [6, 24]
    assert resolve_workers(3) == 3 and resolve_workers(0) >= 1
    with pytest.raises(ConfigError):
        resolve_workers(-2)
