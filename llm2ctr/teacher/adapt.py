"""LoRA adaptation of the teacher on relevance classification (``llm2ctr teacher adapt``).

Why this shape: the student regresses onto the teacher's *pooled* embedding, so the adapter is
trained through exactly that representation: backbone + LoRA (peft) -> the embed job's pooling
-> a 4-way linear head on rsl 1..4, with the same RAG prompts the embed job builds. The adapter
therefore plugs into ``teacher embed`` unchanged (merged in memory for hf; a merged copy on disk
for vLLM or a served model).

Resumable: every ``lora.save_every`` optimizer steps a checkpoint (adapter + head + optimizer +
RNG state + step) is written atomically into a hidden work folder keyed by the config and inputs;
a restart continues from it and, the batch order being a function of the seed, ends with the same
adapter as an uninterrupted run.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from tqdm.auto import tqdm

from llm2ctr.artifacts import atomic_dir, atomic_write_json, read_manifest, write_manifest
from llm2ctr.config import Config
from llm2ctr.errors import InputError
from llm2ctr.teacher.artifact import ADAPTER_KIND
from llm2ctr.teacher.artifact import merged_model_dir as merged_model_dir  # its old home
from llm2ctr.teacher.backends import TeacherBackendError, resolve_model
from llm2ctr.teacher.prompts import PromptSpec, build_prompts

log = logging.getLogger(__name__)
KIND = ADAPTER_KIND
HEAD_FILE = "head.safetensors"


def _labelled(pairs: pa.Table, split: str) -> np.ndarray:
    rsl = pairs.column("rsl").to_numpy(zero_copy_only=False)
    splits = np.asarray(pairs.column("split").to_pylist(), dtype=object)
    ok = (splits == split) & ~np.isnan(rsl.astype(float))
    return np.flatnonzero(ok)


def _schedule(idx: np.ndarray, bs: int, epochs: int, max_steps: int, seed: int) -> list[np.ndarray]:
    """Every step's batch, fixed by the seed (so a resumed run replays the same order)."""
    rng = np.random.default_rng(seed)
    out: list[np.ndarray] = []
    for _ in range(epochs):
        perm = idx[rng.permutation(len(idx))]
        out.extend(perm[s:s + bs] for s in range(0, len(perm), bs))
    return out[:max_steps] if max_steps else out


def _save_checkpoint(path: Path, net, head, opt, step: int, losses: list[float], acc_before) -> None:
    """The LoRA weights and the head (not the frozen backbone), optimizer, torch RNG (dropout), step."""
    from peft import get_peft_model_state_dict

    from llm2ctr.training import save_checkpoint

    weights = {**{f"lora.{k}": v for k, v in get_peft_model_state_dict(net).items()},
               **{f"head.{k}": v for k, v in head.state_dict().items()}}
    save_checkpoint(path, weights, opt, position={"step": step, "losses": losses, "acc_before": acc_before},
                    rng=("torch",))


def _load_checkpoint(path: Path, net, head, opt) -> tuple[int, list[float], float | None]:
    from peft import set_peft_model_state_dict

    from llm2ctr.training import load_checkpoint

    def put(weights: dict) -> None:
        set_peft_model_state_dict(net, {k[5:]: v for k, v in weights.items() if k.startswith("lora.")})
        head.load_state_dict({k[5:]: v for k, v in weights.items() if k.startswith("head.")})

    pos = load_checkpoint(path, put, opt, what="teacher adapt checkpoint")
    return pos["step"], pos["losses"], pos["acc_before"]


def adapt_teacher(cfg: Config, pairs: pa.Table, neighbours: pa.Table | None, inputs: dict[str, Path], out: Path,
                  progress: bool = True) -> dict[str, Any]:
    """Train the adapter and save it (peft folder + ``head.safetensors`` + manifest) at ``out``."""
    import torch
    from peft import LoraConfig, get_peft_model

    from llm2ctr.teacher.backends.hf import load_encoder, pick_device, pool

    t, lc = cfg.teacher, cfg.teacher.lora
    if t.backend == "openai":
        raise TeacherBackendError("teacher adapt trains the model in-process: set teacher.model to a local path "
                                  "or hub id (backend hf or vllm), not a server")
    spec = PromptSpec.from_config(t)
    train_idx = _labelled(pairs, "train")
    if lc.max_train_pairs:
        train_idx = train_idx[: lc.max_train_pairs]
    if len(train_idx) == 0:
        raise InputError(f"{inputs['pairs']}: no labelled (rsl 1..4) pairs in split 'train' to adapt on")
    valid_idx = _labelled(pairs, "valid")[:512]
    prompts = build_prompts(pairs, spec, neighbours)
    labels = pairs.column("rsl").to_numpy(zero_copy_only=False)

    torch.manual_seed(cfg.seed)
    device = pick_device(t.device)
    model_id = resolve_model(t.model)
    tok, net = load_encoder(t, model_id, None, device)
    net.train()
    lora = LoraConfig(r=lc.r, lora_alpha=lc.alpha, lora_dropout=lc.dropout,
                      target_modules=list(lc.target_modules) or None)
    try:
        net = get_peft_model(net, lora)
    except ValueError as exc:
        raise TeacherBackendError(f"LoRA cannot adapt {model_id!r}: {exc}; set teacher.lora.target_modules") from None
    head = torch.nn.Linear(net.config.hidden_size, 4).to(device)
    params = [p for p in net.parameters() if p.requires_grad] + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=lc.lr)
    schedule = _schedule(train_idx, lc.batch_size, lc.epochs, lc.max_steps, cfg.seed)
    total = len(schedule)
    key = hashlib.sha256(json.dumps({"cfg": dataclasses.asdict(t), "seed": cfg.seed, "inputs": {
        k: read_manifest(p)["content_hash"] for k, p in inputs.items()}}, sort_keys=True).encode()).hexdigest()[:12]
    work = out.with_name(f".{out.name}.work-{key}")
    for old in out.parent.glob(f".{out.name}.work-*"):
        if old != work:
            shutil.rmtree(old, ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    ckpt = work / "checkpoint.pt"  # a training-kit folder (the name predates it; the resume test waits for it)

    def logits(rows: np.ndarray):
        enc = tok([prompts[i] for i in rows], padding=True, truncation=True, max_length=t.max_model_len,
                  return_tensors="pt").to(device)
        hidden = net(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state
        vec = pool(hidden, enc["attention_mask"], t.pooling).float()
        if t.normalize:
            vec = torch.nn.functional.normalize(vec, dim=-1) * math.sqrt(vec.shape[-1])
        return head(vec)

    def accuracy(rows: np.ndarray) -> float | None:
        if len(rows) == 0:
            return None
        net.eval()
        with torch.no_grad():
            pred = np.concatenate([logits(rows[s:s + 32]).argmax(-1).cpu().numpy() for s in range(0, len(rows), 32)])
        net.train()
        return float((pred == labels[rows] - 1).mean())

    if (ckpt / "position.json").is_file():  # (a bare file is a pre-kit checkpoint: start over)
        step, losses, acc_before = _load_checkpoint(ckpt, net, head, opt)
        log.info("resuming teacher adapt from step %d of %d (%s)", step, total, ckpt)
    else:
        step, losses, acc_before = 0, [], accuracy(valid_idx)
    bar = tqdm(total=total, initial=step, unit="step", desc="teacher adapt", disable=not progress)
    every = lc.save_every * lc.grad_accum
    for rows in schedule[step:]:
        y = torch.as_tensor(labels[rows].astype(np.int64) - 1, device=device)
        loss = torch.nn.functional.cross_entropy(logits(rows), y)
        (loss / lc.grad_accum).backward()
        if (step + 1) % lc.grad_accum == 0 or step + 1 == total:
            opt.step()
            opt.zero_grad(set_to_none=True)
        losses.append(loss.item())
        step += 1
        bar.update(1)
        bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}", refresh=False)
        if every and step % every == 0 and step < total:
            _save_checkpoint(ckpt, net, head, opt, step, losses, acc_before)
    bar.close()
    acc_after = accuracy(valid_idx)

    from safetensors.torch import save_file

    k = max(1, len(losses) // 5)
    metrics = {"steps": step, "train_pairs": int(len(train_idx)), "loss_first": float(np.mean(losses[:k])),
               "loss_last": float(np.mean(losses[-k:])), "valid_acc_before": acc_before, "valid_acc_after": acc_after}
    with atomic_dir(out) as tmp:
        net.save_pretrained(str(tmp))
        save_file({k2: v.detach().cpu().contiguous() for k2, v in head.state_dict().items()}, str(tmp / HEAD_FILE))
        atomic_write_json(tmp / "metrics.json", metrics)
        write_manifest(tmp, kind=KIND, stage="teacher", config=t, inputs=inputs, counts={"train_pairs": len(train_idx)},
                       base_model=t.model, pooling=t.pooling, template_hash=spec.template_hash(), metrics=metrics)
    shutil.rmtree(work, ignore_errors=True)
    return {"out": str(out), **metrics}

