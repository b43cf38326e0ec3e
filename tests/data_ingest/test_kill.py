"""A killed import never leaves a half-written pairs artifact: the old one or the new one, whole."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from llm2ctr.artifacts import verify_content
from llm2ctr.data.ingest import run_import
from llm2ctr.data.store import load_pairs


def test_sigkill_during_import_keeps_a_whole_artifact(tmp_path, cfg, csv_writer, rows):
    small = csv_writer(tmp_path / "small.csv", ["query", "item_text", "rsl"], rows(10))
    out = run_import(cfg, small)["out"]
    big = csv_writer(tmp_path / "big.csv", ["query", "item_text", "rsl"], rows(200_000))
    code = ("import sys; from llm2ctr.cli import main; "
            f"sys.exit(main(['data', 'import', {str(big)!r}, 'workdir={tmp_path / 'work'}']))")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    time.sleep(2.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    verify_content(out)  # manifest and files agree: never a mix of old and new
    assert load_pairs(out).num_rows in (10, 200_000)
