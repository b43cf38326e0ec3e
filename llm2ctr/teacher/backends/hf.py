"""In-process transformers / sentence-transformers backend (CPU quickstart, GPUs without vLLM).

Batches are sorted by length inside each call so padding is minimal; pooling uses the attention
mask, so last-token pooling is right with left *and* right padding (the article's sample code
took position 0 of left-padded batches, which is a pad token).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from llm2ctr.errors import TeacherBackendError
from llm2ctr.teacher.config import TeacherConfig

log = logging.getLogger(__name__)


def pick_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def pick_dtype(dtype: str, device: str):
    import torch

    if dtype == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    try:
        return {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[dtype]
    except KeyError:
        raise TeacherBackendError(f"teacher.dtype: expected auto/float32/float16/bfloat16, got {dtype!r}") from None


def pool(hidden, mask, pooling: str):
    """Mean or last-token pooling over real tokens only (any padding side)."""
    import torch

    if pooling == "mean":
        m = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * m).sum(1) / m.sum(1).clamp(min=1)
    if pooling == "last":
        pos = torch.arange(mask.shape[1], device=mask.device).expand_as(mask)
        last = (pos * mask).argmax(1)
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
    raise TeacherBackendError(f"teacher.pooling: expected mean or last, got {pooling!r}")


def load_encoder(cfg: TeacherConfig, model: str, adapter: str | Path | None = None, device: str = "cpu"):
    """(tokenizer, backbone) with the LoRA adapter merged in when given."""
    from transformers import AutoModel, AutoTokenizer

    kw = {"revision": cfg.revision or None, "trust_remote_code": cfg.trust_remote_code}
    try:
        tok = AutoTokenizer.from_pretrained(model, **kw)
        net = AutoModel.from_pretrained(model, dtype=pick_dtype(cfg.dtype, device), **kw)
    except (OSError, ValueError) as exc:
        raise TeacherBackendError(f"teacher.model {model!r} does not load with transformers: {exc}") from None
    if adapter is not None:
        from peft import PeftModel

        net = PeftModel.from_pretrained(net, str(adapter)).merge_and_unload()
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    tok.truncation_side = "left"  # keep the target item at the end of the prompt
    return tok, net.to(device).eval()


class HFBackend:
    """transformers AutoModel + mask-aware pooling, or a sentence-transformers model as saved."""

    name = "hf"

    def __init__(self, cfg: TeacherConfig, model: str, adapter: str | Path | None = None) -> None:
        self.cfg, self.model_id, self.tokens_seen = cfg, model, 0
        self.device = pick_device(cfg.device)
        impl = cfg.hf_impl
        if impl == "auto":
            impl = "transformers"
        if impl == "sentence_transformers":
            if adapter is not None:
                raise TeacherBackendError("a LoRA adapter needs teacher.hf_impl=transformers")
            from sentence_transformers import SentenceTransformer

            self.st = SentenceTransformer(model, device=self.device, trust_remote_code=cfg.trust_remote_code,
                                          revision=cfg.revision or None)
            self.st.max_seq_length = cfg.max_model_len
            self.st.tokenizer.truncation_side = "left"  # as the transformers path: the target item is at the end
            self.tok = self.st.tokenizer
        elif impl == "transformers":
            self.st = None
            self.tok, self.net = load_encoder(cfg, model, adapter, self.device)
        else:
            raise TeacherBackendError(f"teacher.hf_impl: expected auto/transformers/sentence_transformers, got {impl!r}")

    @classmethod
    def from_loaded(cls, cfg: TeacherConfig, tokenizer, model) -> HFBackend:
        """Wrap an already loaded tokenizer + backbone (benchmarks, notebooks)."""
        self = cls.__new__(cls)
        self.cfg, self.model_id, self.tokens_seen, self.st = cfg, getattr(model, "name_or_path", ""), 0, None
        self.device = str(next(model.parameters()).device)
        self.tok, self.net = tokenizer, model.eval()
        return self

    def count_tokens(self, texts: list[str]) -> np.ndarray:
        enc = self.tok(texts, truncation=True, max_length=self.cfg.max_model_len)["input_ids"]
        return np.fromiter((len(x) for x in enc), np.int64, len(enc))

    def embed(self, texts: list[str]) -> np.ndarray:
        import torch

        with torch.inference_mode():
            return self._embed(texts)

    def _embed(self, texts: list[str]) -> np.ndarray:
        import torch

        if not texts:
            return np.zeros((0, 0), np.float32)
        if self.st is not None:
            out = self.st.encode(texts, batch_size=self.cfg.batch_size, convert_to_numpy=True,
                                 normalize_embeddings=self.cfg.normalize, show_progress_bar=False)
            self.tokens_seen += int(self.count_tokens(texts).sum())
            return out.astype(np.float32)
        order = np.argsort([len(t) for t in texts], kind="stable")
        out: list[np.ndarray] = []
        bs = self.cfg.batch_size
        for s in range(0, len(texts), bs):
            hidden, mask = self._hidden([texts[i] for i in order[s:s + bs]])
            vec = pool(hidden, mask, self.cfg.pooling)
            if self.cfg.normalize:
                vec = torch.nn.functional.normalize(vec.float(), dim=-1)
            out.append(vec.float().cpu().numpy())
            self.tokens_seen += int(mask.sum())
        result = np.empty((len(texts), out[0].shape[1]), np.float32)
        result[order] = np.concatenate(out)
        return result

    def _hidden(self, batch: list[str]):
        """(last hidden states [B, L, d], attention mask [B, L]) of one batch; other runtimes override this."""
        enc = self.tok(batch, padding=True, truncation=True, max_length=self.cfg.max_model_len,
                       return_tensors="pt").to(self.device)
        return self.net(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state, \
            enc["attention_mask"]

    def close(self) -> None:
        self.net = None
        self.st = None
