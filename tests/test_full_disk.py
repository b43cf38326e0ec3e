"""A full disk gives a clear error naming the artifact and leaves no half-written artifact behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.fixture
def small_disk(tmp_path: Path):
    """A 3 MiB tmpfs (needs root, as on the project's machines and CI)."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mnt)], check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_disk_full_during_synth(small_disk: Path):
    workdir = small_disk / "w"
    proc = subprocess.run(
        [sys.executable, "-m", "llm2ctr.cli", "data", "synth", f"workdir={workdir}",
         "data.synth.n_queries=3000", "data.synth.items_per_category=300"],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 2, proc.stderr
    assert f"disk full while writing {workdir / 'data' / 'pairs'}" in proc.stderr
    assert "Traceback" not in proc.stderr
    data = workdir / "data"
    # the catalogue fitted and is complete; the pairs did not and left nothing, not even a temp dir
    assert (data / "catalogue" / "manifest.json").is_file()
    assert sorted(p.name for p in data.iterdir()) == ["catalogue"]
