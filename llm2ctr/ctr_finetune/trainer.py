"""Training loop: accelerate, streamed Arrow batches, exact resume, jsonl logs, tqdm.

Every random choice of a step (negative downsampling, debias noise and levels) comes from a
generator seeded by (seed, epoch, step) and the data order is a pure function of (seed, epoch),
so a run killed at any point and restarted from its last checkpoint ends with the same weights
as an uninterrupted run (tests/ctr/test_resume.py kills one with SIGKILL to check).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from accelerate import Accelerator
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from llm2ctr.artifacts import atomic_dir, atomic_write_json, atomic_write_text, reading
from llm2ctr.ctr_finetune.baselines import ModelSpec
from llm2ctr.ctr_finetune.debias import debias_loss
from llm2ctr.ctr_finetune.features import FeatureReader
from llm2ctr.ctr_finetune.rsl import rsl_loss

log = logging.getLogger(__name__)
CKPT = "checkpoint"


def make_optimizer(model: torch.nn.Module, lr: float, enc_lr_scale: float, weight_decay: float = 0.0):
    """Adam with two groups: the encoder at lr * enc_lr_scale, everything else at lr."""
    enc = getattr(model, "encoder", None)
    enc_ids = {id(p) for p in enc.parameters()} if enc is not None else set()
    rest = [p for p in model.parameters() if id(p) not in enc_ids and p.requires_grad]
    groups = [{"params": rest, "lr": lr, "name": "ranker"}]
    if enc_ids:
        groups.append({"params": list(enc.parameters()), "lr": lr * enc_lr_scale, "name": "encoder"})
    return torch.optim.Adam(groups, lr=lr, weight_decay=weight_decay)


def state_tensors(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}


def _step_generator(seed: int, epoch: int, step: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed) * 1_000_003 + epoch * 10_007 + step)


def _subsample(batch: dict[str, torch.Tensor], rate: float, g: torch.Generator) -> dict[str, torch.Tensor]:
    """Negative downsampling: keep negatives with prob ``rate``, weight kept ones by 1/rate (unbiased)."""
    y = batch["label"]
    if rate >= 1.0:
        batch["weight"] = torch.ones_like(y)
        return batch
    keep = (y > 0.5) | (torch.rand(y.shape, generator=g) < rate)
    out = {k: v[keep] for k, v in batch.items()}
    out["weight"] = torch.where(out["label"] > 0.5, 1.0, 1.0 / rate)
    return out


def click_loss(logit: torch.Tensor, y: torch.Tensor, w: torch.Tensor, hard_neg_ratio: float) -> torch.Tensor:
    """Weighted BCE; with ``hard_neg_ratio`` > 0 only the hardest share of negatives count (OHEM)."""
    per = F.binary_cross_entropy_with_logits(logit, y, reduction="none") * w
    if hard_neg_ratio > 0:
        neg = y < 0.5
        n_keep = int(round(float(neg.sum()) * hard_neg_ratio))
        drop = neg.clone()
        if n_keep > 0:
            neg_losses = torch.where(neg, per.detach(), torch.full_like(per, -1.0))
            drop[torch.topk(neg_losses, n_keep).indices] = False
        w = w.masked_fill(drop, 0.0)
        per = per.masked_fill(drop, 0.0)
    return per.sum() / w.sum().clamp(min=1e-9)


def _save_checkpoint(directory: Path, model, optimizer, meta: dict) -> None:
    with atomic_dir(directory) as tmp:
        save_file(state_tensors(model), str(tmp / "model.safetensors"))
        torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
        atomic_write_json(tmp / "state.json", meta)


def _load_checkpoint(directory: Path, model, optimizer) -> dict:
    with reading(directory, "ranker checkpoint"):
        model.load_state_dict(load_file(str(directory / "model.safetensors")))
        optimizer.load_state_dict(torch.load(directory / "optimizer.pt", weights_only=True))
        return json.loads((directory / "state.json").read_text())


def train(
    model: torch.nn.Module,
    spec: ModelSpec,
    reader: FeatureReader,
    cfg,
    out_dir: str | Path,
    progress: bool = True,
) -> dict:
    """Train ``model`` on ``reader``; checkpoints and ``train_log.jsonl`` go to ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    accelerator = Accelerator(cpu=True)
    optimizer = make_optimizer(model, cfg.lr, cfg.enc_lr_scale, cfg.weight_decay)
    model, optimizer = accelerator.prepare(model, optimizer)
    ckpt, log_path = out_dir / CKPT, out_dir / "train_log.jsonl"
    epoch, step, global_step, seconds, samples = 0, 0, 0, 0.0, 0
    if (ckpt / "state.json").is_file():
        st = _load_checkpoint(ckpt, model, optimizer)
        epoch, step, global_step = st["epoch"], st["step"], st["global_step"]
        seconds, samples = st["seconds"], st["samples"]
        log.info("%s: resuming at epoch %d step %d", spec.name, epoch, step)
        if log_path.is_file():  # drop log lines past the checkpoint: they will be redone
            lines = [ln for ln in log_path.read_text().splitlines() if json.loads(ln)["global_step"] <= global_step]
            atomic_write_text(log_path, "".join(ln + "\n" for ln in lines))
    elif log_path.exists():
        log_path.unlink()
    spe = reader.steps_per_epoch(cfg.batch_size)
    total = spe * cfg.epochs if cfg.max_steps <= 0 else min(spe * cfg.epochs, cfg.max_steps)
    bar = tqdm(total=total, initial=global_step, desc=f"train {spec.name}", disable=not progress, leave=False)
    model.train()
    done = global_step >= total
    unfreeze_step = int(round(cfg.encoder_unfreeze_at * total))
    raw = accelerator.unwrap_model(model)
    has_live = hasattr(raw, "encoder_live") and getattr(raw, "encoder", None) is not None
    logf = open(log_path, "a")  # noqa: SIM115 - closed in finally
    try:
        while not done and epoch < cfg.epochs:
            for batch in reader.batches(cfg.batch_size, shuffle=True, seed=cfg.seed, epoch=epoch, start_step=step):
                t0 = time.perf_counter()
                g = _step_generator(cfg.seed, epoch, step)
                if has_live:  # cache until unfreeze_step, then the encoder trains in the loop
                    raw.encoder_live = global_step >= unfreeze_step
                batch = _subsample(batch, cfg.neg_sample_rate, g)
                out = model(batch)
                loss = click_loss(out["logit"], batch["label"], batch["weight"], cfg.hard_neg_ratio)
                stats = {"click_loss": float(loss.detach())}
                if "rsl_logits" in out and cfg.rsl_loss_weight > 0:
                    aux = rsl_loss(out["rsl_logits"], batch["rsl"])
                    loss = loss + cfg.rsl_loss_weight * aux
                    stats["rsl_loss"] = float(aux.detach())
                if spec.debias:
                    d, dstats = debias_loss(
                        accelerator.unwrap_model(model), out, batch, g,
                        margin=cfg.debias_margin, threshold=cfg.debias_ctr_threshold,
                        weight=cfg.debias_weight, noise_std=cfg.debias_noise_std,
                        p1=cfg.debias_rsl_p1, p2=cfg.debias_rsl_p2, rsl_weight=cfg.rsl_loss_weight,
                    )
                    loss = loss + d
                    stats.update(dstats, debias_loss=float(d.detach()))
                optimizer.zero_grad(set_to_none=True)
                accelerator.backward(loss)
                optimizer.step()
                step += 1
                global_step += 1
                samples += int(batch["label"].shape[0])
                seconds += time.perf_counter() - t0
                logf.write(json.dumps({"global_step": global_step, "epoch": epoch, "loss": float(loss.detach()), **stats}) + "\n")
                bar.update(1)
                if global_step >= total:
                    done = True
                    break
                if cfg.checkpoint_every > 0 and global_step % cfg.checkpoint_every == 0:
                    logf.flush()
                    meta = {"epoch": epoch, "step": step, "global_step": global_step, "seconds": seconds, "samples": samples}
                    _save_checkpoint(ckpt, accelerator.unwrap_model(model), optimizer, meta)
            else:
                epoch, step = epoch + 1, 0
    finally:
        logf.close()
        bar.close()
    model = accelerator.unwrap_model(model)
    if hasattr(model, "encoder_live") and model.encoder is not None:
        model.encoder_live = True
    save_file(state_tensors(model), str(out_dir / "model.safetensors"))
    meta = {"epoch": epoch, "step": step, "global_step": global_step, "seconds": seconds, "samples": samples}
    _save_checkpoint(ckpt, model, optimizer, meta)
    return {
        "steps": global_step,
        "samples": samples,
        "train_seconds": round(seconds, 3),
        "samples_per_s": round(samples / seconds, 1) if seconds > 0 else None,
    }


@torch.no_grad()
def predict(model: torch.nn.Module, reader: FeatureReader, batch_size: int, desc: str = "predict") -> dict:
    """Logits (and, for PRECTR variants, P factored, tau, gate weight w1) over a whole feature file."""
    model.eval()
    if hasattr(model, "cache_targets") and model._tuned is None:
        model.cache_targets()  # every pair once, reused by the later predict calls of this model
    keys = ("logit", "p_factored", "tau")
    out: dict[str, list[torch.Tensor]] = {k: [] for k in (*keys, "gate1")}
    for batch in tqdm(reader.batches(batch_size), total=reader.steps_per_epoch(batch_size), desc=desc, leave=False):
        o = model(batch)
        for k in keys:
            if k in o:
                out[k].append(o[k].float())
        if "gate" in o:
            out["gate1"].append(o["gate"][:, 0].float())
    return {k: torch.cat(v).numpy() for k, v in out.items() if v}
