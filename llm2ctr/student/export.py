"""Serving formats for a trained student: ONNX (fp32 + int8) over the stock modules, Hub push.

The student folder itself already loads everywhere (student/artifact.py); export adds
``onnx/model.onnx``, a graph of the stock BERT forward with the pooled vector, the relevance
logits and the teacher projection as outputs, checked against PyTorch on real pairs before it is
declared good, and ``onnx/model_int8.onnx`` (onnxruntime dynamic quantisation: weights int8,
activations quantised on the fly), whose macro-F1 cost is measured on the test split.

Speed (measured on 2 CPU cores, benchmarks/bench_student.py -> benchmarks/results/student.md):

- the graph is traced with BERT's *eager* attention (matmul, additive mask, softmax) rather than
  the ``sdpa`` path the PyTorch model runs: same numbers (parity ~1e-6), but the sdpa export drags
  in mask bookkeeping (IsNaN/Where/And) and ran 10-25% slower in onnxruntime, fp32 and int8;
- ``onnx_session`` uses torch's thread count, every onnxruntime graph optimisation but one:
  ``SkipLayerNormFusion``, whose fused CPU kernel took 3-6x the time of the LayerNormalization +
  Add it replaces on this model (hidden 128) and made int8 no faster than fp32;
- onnxruntime's offline BERT optimizer (``onnxruntime.transformers.optimizer``) is deliberately
  not applied: it fuses this graph fully (EmbedLayerNormalization, Attention, SkipLayerNorm,
  BiasGelu) but its fused Attention/SkipLayerNorm kernels were slower than the unfused ops at
  head size 32 and ~20 tokens, fp32 and int8 alike.
"""

from __future__ import annotations

import copy
import logging
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from llm2ctr.errors import UserError
from llm2ctr.student.modeling import Student

log = logging.getLogger(__name__)
ONNX_OUTPUTS = ["pooled", "logits", "projection"]
ONNX_INPUTS = ["input_ids", "token_type_ids", "attention_mask"]
# graph rewrites onnxruntime would apply at load time that are slower on this model (see above)
SLOW_ORT_OPTIMIZERS = ["SkipLayerNormFusion"]


class _OnnxWrapper(nn.Module):
    """Tuple outputs for the exporter (ModelOutput is not traceable as-is)."""

    def __init__(self, model: Student) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids, token_type_ids, attention_mask):  # noqa: ANN001
        out = self.model(input_ids=input_ids, token_type_ids=token_type_ids, attention_mask=attention_mask)
        return out.pooled, out.logits, out.projection


def export_onnx(model: Student, batch: dict[str, torch.Tensor], path: str | Path, opset: int = 17) -> Path:
    """Export with dynamic batch and sequence axes (TorchScript exporter; no onnxscript needed).

    Traced from a copy of ``model`` switched to eager attention (the caller's model is untouched):
    the same function as the sdpa path, as a plain matmul/softmax graph that runs faster in
    onnxruntime (module docstring).
    """
    model = copy.deepcopy(model).eval()
    if getattr(model.relevance.config, "_attn_implementation", "eager") != "eager":
        model.relevance.set_attn_implementation("eager")
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
    """A CPU onnxruntime session: ``threads`` intra-op threads (default: torch's, so ONNX and
    PyTorch are compared on the same threads), all graph optimisations except SLOW_ORT_OPTIMIZERS."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads or torch.get_num_threads()
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"],
                                disabled_optimizers=SLOW_ORT_OPTIMIZERS)


def run_onnx(session, batch: dict[str, torch.Tensor | np.ndarray]) -> dict[str, np.ndarray]:
    """All three outputs for a batch of torch tensors or numpy arrays (int64 inputs are not copied)."""
    feeds = {k: np.asarray(batch[k].numpy() if isinstance(batch[k], torch.Tensor) else batch[k], dtype=np.int64)
             for k in ONNX_INPUTS}
    return dict(zip(ONNX_OUTPUTS, session.run(ONNX_OUTPUTS, feeds), strict=True))


def parity(model: Student, session, batch: dict[str, torch.Tensor]) -> dict[str, float]:
    """Max abs difference per output and mean cosine of the pooled vectors, ONNX vs PyTorch."""
    with torch.no_grad():
        out = model.eval()(**{k: batch[k] for k in ONNX_INPUTS})
    ref = {"pooled": out.pooled.numpy(), "logits": out.logits.numpy(), "projection": out.projection.numpy()}
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
        raise UserError("HF_TOKEN is not set; export a write token to push (or use --dry-run)")
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
    info = api.upload_folder(
        folder_path=str(folder), repo_id=repo_id, repo_type="model",
        ignore_patterns=[".*", "**/.*"], commit_message="Upload llm2ctr student",
    )
    res["commit_url"] = str(getattr(info, "commit_url", info))
    return res
