"""Suite-wide settings: offline hubs, few threads (2-core machines), deterministic seeds."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")


@pytest.fixture(scope="session")
def vllm_server_at():
    """A context-manager factory: ``with vllm_server_at(model, name, log) as base_url: ...`` runs
    ``python -m vllm.entrypoints.openai.api_server --runner pooling`` on a free loopback port, waits
    for /health (failing with the server's log if it exits or stalls) and always kills it."""

    @contextlib.contextmanager
    def start(model: Path, name: str, log: Path, *extra: str, timeout_s: float = 300) -> Iterator[str]:
        import httpx

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
        cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(model),
               "--served-model-name", name, "--runner", "pooling", "--host", "127.0.0.1", "--port", str(port),
               "--dtype", "float32", "--enforce-eager", *extra]
        with open(log, "wb") as fh:
            proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        try:
            deadline = time.monotonic() + timeout_s
            while True:
                if proc.poll() is not None:
                    pytest.fail(f"vLLM server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail(f"vLLM server not healthy after {timeout_s:.0f} s:\n{log.read_text()[-3000:]}")
                time.sleep(0.5)
            yield f"http://127.0.0.1:{port}/v1"
        finally:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)

    return start


@pytest.fixture(scope="session")
def require_vllm() -> None:
    """Skip when vllm cannot be imported; under LLM2CTR_REQUIRE_VLLM=1 (CI) fail instead."""
    try:
        import vllm  # noqa: F401
    except Exception as exc:  # noqa: BLE001 - any import failure means no usable vLLM
        if os.environ.get("LLM2CTR_REQUIRE_VLLM") == "1":
            pytest.fail(f"LLM2CTR_REQUIRE_VLLM=1 but vllm cannot be imported: {exc}")
        pytest.skip(f"vllm not importable: {exc}")
