"""ONNX Runtime backend (``teacher.backend=onnx``): the hf backend's model, run by onnxruntime on the CPU.

Optional (``pip install 'llm2ctr[onnx]'``; ``make install`` has it through the dev extra). The
transformers model (LoRA adapter merged in, as for hf) is exported once per process to a temporary
ONNX file with eager attention, and every batch is tokenised, sorted by length and pooled exactly as
in the hf backend: the vectors match hf's to float32 rounding (tests/teacher/test_onnx_backend.py,
max |diff| < 1e-4). On the 2-core quickstart machine it embeds MiniLM RAG prompts ~2x faster than
PyTorch. Encoder-only models (BERT family) are what it is for; decoders stay on hf or vllm.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from llm2ctr.errors import TeacherBackendError
from llm2ctr.teacher.backends.hf import HFBackend, load_encoder
from llm2ctr.teacher.config import TeacherConfig


class ONNXBackend(HFBackend):
    """HFBackend with the forward pass in an onnxruntime session."""

    name = "onnx"

    def __init__(self, cfg: TeacherConfig, model: str, adapter: str | Path | None = None) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise TeacherBackendError("teacher.backend=onnx needs onnxruntime: pip install 'llm2ctr[onnx]' "
                                      "(or use teacher.backend=hf, the same vectors in PyTorch)") from None
        import torch

        if cfg.device not in ("auto", "cpu"):
            raise TeacherBackendError(f"teacher.backend=onnx runs on the CPU; got teacher.device={cfg.device!r}")
        self.cfg, self.model_id, self.tokens_seen, self.st, self.device = cfg, model, 0, None, "cpu"
        self.tok, net = load_encoder(cfg, model, adapter, "cpu")
        net.set_attn_implementation("eager")  # sdpa traces a mask path that is wrong for other shapes

        class Hidden(torch.nn.Module):
            def __init__(self, m):
                super().__init__()
                self.m = m

            def forward(self, input_ids, attention_mask):
                return self.m(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

        example = self.tok(["a b", "a b c d"], padding=True, return_tensors="pt")
        with tempfile.TemporaryDirectory(prefix="llm2ctr-onnx-") as tmp:
            path = str(Path(tmp) / "teacher.onnx")
            with torch.inference_mode():
                torch.onnx.export(Hidden(net.float()), (example["input_ids"], example["attention_mask"]), path,
                                  input_names=["input_ids", "attention_mask"], output_names=["hidden"],
                                  dynamic_axes={n: {0: "batch", 1: "seq"}
                                                for n in ("input_ids", "attention_mask", "hidden")},
                                  opset_version=17, dynamo=False)
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = torch.get_num_threads()
            self.session = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
        self.net = None

    def _hidden(self, batch: list[str]):
        """The hf backend's batch, through the onnxruntime session (same tokenising, same pooling after)."""
        import torch

        enc = self.tok(batch, padding=True, truncation=True, max_length=self.cfg.max_model_len, return_tensors="np")
        ids, mask = enc["input_ids"].astype(np.int64), enc["attention_mask"].astype(np.int64)
        hidden = self.session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
        return torch.from_numpy(hidden), torch.from_numpy(mask)

    def close(self) -> None:
        self.session = None
