"""Serving formats for a trained student: sentence-transformers folder, ONNX (fp32 + int8), Hub push.

The ONNX graph outputs the pooled vector, relevance logits and teacher projection; the export is
checked against PyTorch on real pairs before it is declared good. The int8 model uses onnxruntime
dynamic quantisation (weights int8, activations quantised on the fly): the usual CPU-serving trade.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from llm2ctr.student.modeling import LightweightEncoderModel

log = logging.getLogger(__name__)
ONNX_OUTPUTS = ["pooled", "logits", "projection"]
ONNX_INPUTS = ["input_ids", "token_type_ids", "attention_mask"]


class _OnnxWrapper(nn.Module):
    """Tuple outputs for the exporter (ModelOutput is not traceable as-is)."""

    def __init__(self, model: LightweightEncoderModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids, token_type_ids, attention_mask):  # noqa: ANN001
        out = self.model(input_ids=input_ids, token_type_ids=token_type_ids, attention_mask=attention_mask)
        return out.pooler_output, out.logits, out.projection


def export_onnx(model: LightweightEncoderModel, batch: dict[str, torch.Tensor], path: str | Path, opset: int = 17) -> Path:
    """Export with dynamic batch and sequence axes (TorchScript exporter; no onnxscript needed)."""
    model = model.eval()
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    args = tuple(batch[k] for k in ONNX_INPUTS)
    dyn = {k: {0: "batch", 1: "seq"} for k in ONNX_INPUTS}
    dyn.update({k: {0: "batch"} for k in ONNX_OUTPUTS})
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notices
        torch.onnx.export(
            _OnnxWrapper(model), args, str(tmp), input_names=ONNX_INPUTS, output_names=ONNX_OUTPUTS,
            dynamic_axes=dyn, opset_version=opset, dynamo=False,
        )
    os.replace(tmp, path)
    return path


def onnx_session(path: str | Path, threads: int | None = None):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


def run_onnx(session, batch: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    feeds = {k: batch[k].numpy().astype(np.int64) for k in ONNX_INPUTS}
    return dict(zip(ONNX_OUTPUTS, session.run(ONNX_OUTPUTS, feeds), strict=True))


def parity(model: LightweightEncoderModel, session, batch: dict[str, torch.Tensor]) -> dict[str, float]:
    """Max abs difference per output and mean cosine of the pooled vectors, ONNX vs PyTorch."""
    with torch.no_grad():
        out = model.eval()(**{k: batch[k] for k in ONNX_INPUTS})
    ref = {"pooled": out.pooler_output.numpy(), "logits": out.logits.numpy(), "projection": out.projection.numpy()}
    got = run_onnx(session, batch)
    res = {f"max_abs_diff_{k}": float(np.abs(ref[k] - got[k]).max()) for k in ONNX_OUTPUTS}
    a, b = ref["pooled"], got["pooled"]
    cos = (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)
    res["pooled_cosine_mean"] = float(cos.mean())
    res["argmax_agreement"] = float((ref["logits"].argmax(1) == got["logits"].argmax(1)).mean())
    return res


def quantize_int8(src: str | Path, dst: str | Path) -> Path:
    """Dynamic int8 quantisation of an fp32 ONNX model (onnxruntime.quantization)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    dst = Path(dst)
    tmp = dst.with_name(f".{dst.name}.tmp")
    quantize_dynamic(str(src), str(tmp), weight_type=QuantType.QInt8)
    os.replace(tmp, dst)
    return dst


def write_sentence_transformers(model_dir: str | Path, out_dir: str | Path, max_length: int) -> Path:
    """A folder ``SentenceTransformer(out_dir)`` loads (after ``import llm2ctr``): encoder + masked mean.

    Single-text encoding gives ``[CLS] text [SEP]`` with segment 0 (the model saw that as the query
    half of a pair); the pooled vector equals ``model.encode`` on the same tokens.
    """
    from sentence_transformers import SentenceTransformer

    try:
        from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    except ImportError:  # sentence-transformers < 6
        from sentence_transformers.models import Pooling, Transformer

    import llm2ctr  # noqa: F401  (registers the AutoModel class)

    word = Transformer(str(model_dir), max_seq_length=max_length)
    pool = Pooling(word.get_embedding_dimension(), pooling_mode="mean")
    st = SentenceTransformer(modules=[word, pool], device="cpu")
    st.save(str(out_dir))
    return Path(out_dir)


def list_upload_files(folder: str | Path) -> list[str]:
    """Files ``push`` would upload (hidden files and checkpoints excluded)."""
    folder = Path(folder)
    return sorted(
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


def push_folder(folder: str | Path, repo_id: str, private: bool = False, dry_run: bool = False) -> dict[str, Any]:
    """Upload ``folder`` to the Hub repo ``repo_id`` with the token in $HF_TOKEN (never logged)."""
    files = list_upload_files(folder)
    res: dict[str, Any] = {"repo_id": repo_id, "private": private, "files": files, "dry_run": dry_run}
    if dry_run:
        return res
    token = os.environ.get("HF_TOKEN")
    if not token:
        raise PermissionError("HF_TOKEN is not set; export a write token to push (or use --dry-run)")
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
    info = api.upload_folder(
        folder_path=str(folder), repo_id=repo_id, repo_type="model",
        ignore_patterns=[".*", "**/.*"], commit_message="Upload llm2ctr student",
    )
    res["commit_url"] = str(getattr(info, "commit_url", info))
    return res
