"""A `rag index` run killed with SIGKILL resumes from its saved chunks and ends identical."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from llm2ctr.artifacts import read_manifest
from llm2ctr.config import Config
from llm2ctr.rag.jobs import run_index

from .conftest import make_pairs, write_pairs

RUN = "import sys; from llm2ctr.cli import main; sys.exit(main(sys.argv[1:]))"


def test_sigkill_then_resume_gives_identical_index(tmp_path: Path, tiny_st_model: str):
    pairs = write_pairs(make_pairs(queries_per_cat=20, items_per_query=20), tmp_path / "pairs")
    opts = [f"rag.embedder={tiny_st_model}", "rag.chunk_size=16", "rag.batch_size=16"]

    killed = tmp_path / "killed"
    work = killed / "rag" / ".index.work"
    proc = subprocess.Popen(
        [sys.executable, "-c", RUN, "rag", "index", "--pairs", str(pairs), f"workdir={killed}", *opts],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        if work.is_dir() and len(list(work.glob("chunk-*.npz"))) >= 3:
            os.kill(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.01)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the job ended before it could be killed"
    done_before = {p.name for p in work.glob("chunk-*.npz")}
    assert len(done_before) >= 3 and not (killed / "rag" / "index").exists()  # no half artifact

    def cfg(wd: Path) -> Config:
        c = Config(workdir=str(wd))
        c.rag.embedder, c.rag.chunk_size, c.rag.batch_size = tiny_st_model, 16, 16
        return c

    run_index(cfg(killed), pairs_dir=pairs)  # resumes from the saved chunks
    run_index(cfg(tmp_path / "clean"), pairs_dir=pairs)  # uninterrupted reference
    a = read_manifest(killed / "rag" / "index", "rag_index")
    b = read_manifest(tmp_path / "clean" / "rag" / "index", "rag_index")
    assert a["content_hash"] == b["content_hash"]  # same faiss file, id map and embeddings, byte for byte
    assert not work.exists()
