"""teacher.engine=ray on a real Ray instance on this machine: the Ray store is the local store byte for
byte (tiny Qwen2, MiniLM, with a PCA reduction fitted in a Ray task); a killed driver resumes to the
same store; an actor killed mid-run is restarted by Ray and no row is lost or written twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from llm2ctr.artifacts import read_manifest
from llm2ctr.teacher.jobs import run_embed
from llm2ctr.teacher.store import load_teacher_embeddings

from .conftest import one_thread, tiny_config, write_workdir

pytestmark = pytest.mark.slow


def test_without_ray_the_error_says_how_to_install(small_workdir: Path, tiny_qwen: Path, tmp_path: Path):
    code = ("import sys; sys.modules['ray'] = None\n"
            "from llm2ctr.cli import main\n"
            f"sys.exit(main(['teacher', 'embed', '--engine', 'ray', 'workdir={small_workdir}', "
            f"'teacher.model={tiny_qwen}', '--out', '{tmp_path / 'x'}', '--no-progress']))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "pip install 'llm2ctr[ray]'" in done.stderr and "Traceback" not in done.stderr


def _shards(root: Path, name: str) -> list[Path]:
    return list(root.glob(f".{name}.work-*/shard-*.arrow"))


def _cli(workdir: Path, model: Path, out: Path) -> list[str]:
    return [sys.executable, "-c", "import sys; from llm2ctr.cli import main; sys.exit(main())", "teacher", "embed",
            "--engine", "ray", f"workdir={workdir}", f"teacher.model={model}", "teacher.pooling=last",
            "teacher.batch_size=16", "teacher.shard_size=24", "teacher.store_dtype=float32", "--out", str(out),
            "--no-progress"]


def test_killed_driver_resumes_to_the_same_store(tiny_qwen: Path, tmp_path: Path):
    wd = write_workdir(tmp_path / "wd", 2400, seed=6)
    out = tmp_path / "ray"
    proc = subprocess.Popen(_cli(wd, tiny_qwen, out), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)  # its Ray services share its process group
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if len(_shards(tmp_path, "ray")) >= 2:
                os.killpg(proc.pid, signal.SIGKILL)
                break
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()[-2000:]
    assert not out.exists()
    n_before = len(_shards(tmp_path, "ray"))
    assert n_before >= 2
    done = subprocess.run(_cli(wd, tiny_qwen, out), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    with one_thread():
        run_embed(tiny_config(wd, tiny_qwen, shard_size=24), out_dir=tmp_path / "local", progress=False)
    assert_same_store(out, tmp_path / "local", 2400)


# the tests above start their own Ray in a subprocess; the ones below share this in-process instance
@pytest.fixture(scope="module")
def ray_local():
    import ray

    ray.init(num_cpus=2, include_dashboard=False, configure_logging=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def assert_same_store(got: Path, want: Path, n_pairs: int) -> None:
    mg, mw = read_manifest(got), read_manifest(want)
    assert mg["content_hash"] == mw["content_hash"] and mg["shards"] == mw["shards"]
    for name in mw["shards"]:
        assert (got / name).read_bytes() == (want / name).read_bytes(), name
    keys, _ = load_teacher_embeddings(got)
    assert len(keys) == len(set(keys)) == n_pairs


@pytest.mark.parametrize("teacher", [
    {"shard_size": 24},
    {"shard_size": 24, "reduction": "pca", "reduced_dim": 16, "pca_sample": 40, "store_dtype": "float16"},
    {"model": "minilm", "pooling": "mean", "max_model_len": 128, "shard_size": 48},
], ids=["tiny-qwen2", "tiny-qwen2-pca", "minilm"])
def test_ray_store_equals_local_store(ray_local, small_workdir: Path, tiny_qwen: Path, tmp_path: Path, teacher):
    teacher = dict(teacher)
    model = teacher.pop("model", tiny_qwen)
    local_cfg = tiny_config(small_workdir, model, **teacher)
    with one_thread():  # each Ray actor has one CPU, so torch runs one thread there too
        run_embed(local_cfg, out_dir=tmp_path / "local", progress=False)
    ray_cfg = tiny_config(small_workdir, model, engine="ray", ray_actors=2, **teacher)
    summary = run_embed(ray_cfg, out_dir=tmp_path / "ray", progress=False)
    assert summary["shards"] >= 3  # several shards, spread over two actors
    assert_same_store(tmp_path / "ray", tmp_path / "local", 120)


def _actor_processes() -> list[psutil.Process]:
    out = []
    for p in psutil.process_iter(["cmdline"]):
        cmd = " ".join(p.info["cmdline"] or [])
        if cmd.startswith("ray::") and "ShardEmbedder" in cmd:
            out.append(p)
    return out


def test_killed_actor_is_retried_without_losing_or_duplicating_rows(ray_local, tiny_qwen: Path, tmp_path: Path):
    wd = write_workdir(tmp_path / "wd", 2400, seed=5)
    cfg = tiny_config(wd, tiny_qwen, engine="ray", ray_actors=1, shard_size=24)
    result: dict = {}
    job = threading.Thread(target=lambda: result.update(run_embed(cfg, out_dir=tmp_path / "ray", progress=False)))
    job.start()
    killed = []
    deadline = time.monotonic() + 300
    while job.is_alive() and time.monotonic() < deadline and not killed:
        if len(_shards(tmp_path, "ray")) >= 2:
            for p in _actor_processes():
                p.send_signal(signal.SIGKILL)
                killed.append(p.pid)
        time.sleep(0.05)
    job.join(600)
    assert killed, "the job finished before an actor could be killed: give it more shards"
    assert result["rows"] == 2400
    with one_thread():
        run_embed(tiny_config(wd, tiny_qwen, shard_size=24), out_dir=tmp_path / "local", progress=False)
    assert_same_store(tmp_path / "ray", tmp_path / "local", 2400)
