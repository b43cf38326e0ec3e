"""Teacher backends behind one small interface: ``embed(texts) -> np.ndarray`` (float32 [n, d]).

Backends: ``hf`` (transformers / sentence-transformers in-process), ``vllm`` (offline engine),
``openai`` (any ``/v1/embeddings`` server such as ``vllm serve MODEL --runner pooling``).
Imports are lazy so that using one backend never imports another's heavy dependencies.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from llm2ctr.errors import TeacherBackendError  # defined with the error vocabulary; importable here as before
from llm2ctr.teacher.config import TeacherConfig
from llm2ctr.teacher.packaged import resolve_packaged

__all__ = ["BACKENDS", "Backend", "TeacherBackendError", "make_backend", "resolve_model"]

BACKENDS = ("hf", "onnx", "vllm", "openai")

class Backend(Protocol):
    """What the embed job needs from a backend."""

    name: str
    tokens_seen: int  # prompt tokens embedded so far (for tokens/s)

    def embed(self, texts: list[str]) -> np.ndarray: ...

    def close(self) -> None: ...


def resolve_model(model: str) -> str:
    """A packaged name (``minilm``, ``smollm2-135m``) -> its local folder; else a path or hub id."""
    return resolve_packaged(model)


def make_backend(cfg: TeacherConfig, adapter: str | Path | None = None) -> Backend:
    """Build the configured backend, with a LoRA adapter folder (``teacher adapt``) merged in.

    hf merges the adapter in memory; vllm loads a merged copy saved once beside the adapter;
    openai embeds with whatever the server serves (serve the merged folder to use an adapter).
    """
    model = resolve_model(cfg.model)
    if cfg.backend == "hf":
        from llm2ctr.teacher.backends.hf import HFBackend

        return HFBackend(cfg, model, adapter)
    if cfg.backend == "onnx":  # optional: the hf model run by onnxruntime (llm2ctr[onnx])
        from llm2ctr.teacher.backends.onnx import ONNXBackend

        return ONNXBackend(cfg, model, adapter)
    if cfg.backend == "vllm":
        from llm2ctr.teacher.backends.vllm_engine import VLLMBackend

        if adapter is not None:
            from llm2ctr.teacher.artifact import merged_model_dir

            model = str(merged_model_dir(cfg, adapter))
        return VLLMBackend(cfg, model)
    if cfg.backend == "openai":
        from llm2ctr.teacher.backends.openai_http import OpenAIBackend

        if adapter is not None:
            raise TeacherBackendError(
                "teacher.use_adapter with backend=openai: serve the merged model instead "
                "(a backend=vllm run builds it once at {workdir}/teacher/adapter.merged-<hash>; docs/teacher.md)"
            )
        return OpenAIBackend(cfg)
    raise TeacherBackendError(f"teacher.backend: unknown backend {cfg.backend!r}; choose one of {BACKENDS}")
