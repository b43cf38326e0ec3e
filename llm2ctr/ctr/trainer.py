"""Training loop: accelerate, streamed Arrow batches, exact resume, jsonl logs, tqdm.

Every random choice of a step (negative downsampling, debias noise and levels) comes from a
generator seeded by (seed, epoch, step) and the data order is a pure function of (seed, epoch),
so a run killed at any point and restarted from its last checkpoint ends with the same weights
as an uninterrupted run (tests/ctr/test_resume.py kills one with SIGKILL to check).

Up to ``epochs`` epochs under a warm-up + decay lr schedule (schedule.py, a function of the global
step); with a validation reader, the validation loss after each epoch drives early stopping and the
returned model carries the best epoch's weights. A checkpoint follows every validation, so a kill
never redoes or skips one.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import torch
import torch.nn.functional as F
from accelerate import Accelerator
from safetensors.torch import save_file
from tqdm.auto import tqdm

from llm2ctr.ctr.baselines import ModelSpec
from llm2ctr.ctr.debias import debias_loss
from llm2ctr.ctr.features import FeatureReader
from llm2ctr.ctr.hccp import hccp_loss
from llm2ctr.ctr.registry import debias_method
from llm2ctr.ctr.rsl import rsl_loss
from llm2ctr.ctr.schedule import (
    EarlyStopping,
    LrSchedule,
    check_options,
    make_scheduler,
    planned_steps,
)
from llm2ctr.training import (
    CheckpointFiles,
    load_checkpoint,
    load_weights,
    save_checkpoint,
    save_weights,
    state_tensors,
    truncate_log,
)

log = logging.getLogger(__name__)
CKPT = "checkpoint"
CKPT_FILES = CheckpointFiles(state="optimizer.pt", position="state.json")  # names tests/ctr/test_resume.py reads


def make_optimizer(model: torch.nn.Module, lr: float, enc_lr_scale: float, weight_decay: float = 0.0):
    """Adam with two groups: the encoder at lr * enc_lr_scale, everything else at lr."""
    enc = getattr(model, "encoder", None)
    enc_ids = {id(p) for p in enc.parameters()} if enc is not None else set()
    rest = [p for p in model.parameters() if id(p) not in enc_ids and p.requires_grad]
    groups = [{"params": rest, "lr": lr, "name": "ranker"}]
    if enc_ids:
        groups.append({"params": list(enc.parameters()), "lr": lr * enc_lr_scale, "name": "encoder"})
    return torch.optim.Adam(groups, lr=lr, weight_decay=weight_decay)


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
    """No RNG state: every random draw of a step comes from ``_step_generator``."""
    save_checkpoint(directory, model, optimizer, position=meta, files=CKPT_FILES)


def _load_checkpoint(directory: Path, model, optimizer) -> dict:
    return load_checkpoint(directory, model, optimizer, files=CKPT_FILES, what="ranker checkpoint")


def _save_best(path: Path, model: torch.nn.Module, epoch: int, loss: float) -> None:
    """Weights of the best epoch so far (atomic: a kill leaves the previous best or the new one)."""
    save_weights(path, model, {"epoch": str(epoch), "valid_loss": repr(loss)})


def _truncate_log(log_path: Path, global_step: int, n_valid: int) -> None:
    """Drop log lines past the checkpoint (they will be redone): step lines after its step, and
    validation lines beyond the ``n_valid`` epochs whose validation the checkpoint recorded."""
    truncate_log(log_path, lambda r: (r["epoch"] < n_valid) if r.get("event") == "valid"
                 else (r["global_step"] <= global_step))


def valid_loss(model: torch.nn.Module, reader: FeatureReader, batch_size: int, progress: bool = False) -> float:
    """Mean unweighted BCE of the model's logits on a whole feature file (the early-stopping signal)."""
    logit = torch.from_numpy(predict(model, reader, batch_size, "validate", progress)["logit"]).double()
    y = torch.from_numpy(reader.column("label")).double()
    return float(F.binary_cross_entropy_with_logits(logit, y))


def valid_batch_size(cfg) -> int:
    """Inference batch of validation (same as jobs' predictions, so the losses match bit for bit)."""
    return max(cfg.batch_size, 4096)


def train(
    model: torch.nn.Module,
    spec: ModelSpec,
    reader: FeatureReader,
    cfg,
    out_dir: str | Path,
    progress: bool = True,
    valid: FeatureReader | None = None,
) -> dict:
    """Train ``model`` on ``reader`` for up to ``cfg.epochs`` epochs; checkpoints and
    ``train_log.jsonl`` go to ``out_dir``.

    With a ``valid`` reader the loss on it is measured after every epoch, training stops after
    ``cfg.early_stopping_patience`` epochs without improvement and the model ends with the best
    epoch's weights (also in ``out_dir/best.safetensors``).
    """
    check_options(cfg)
    with deterministic_kernels(cfg.deterministic):
        return _train(model, spec, reader, cfg, out_dir, progress, valid)


@contextlib.contextmanager
def deterministic_kernels(on: bool) -> Iterator[None]:
    """torch.use_deterministic_algorithms for the block only (the caller's setting is restored)."""
    before = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(on or before)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before)


def _train(model, spec, reader, cfg, out_dir, progress, valid) -> dict:  # noqa: ANN001
    if valid is not None and valid.num_rows == 0:
        valid = None  # e.g. ctr.valid_share=0: nothing to stop on, train every epoch
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    accelerator = Accelerator(cpu=True)
    opt = make_optimizer(model, cfg.lr, cfg.enc_lr_scale, cfg.weight_decay)
    base_lrs = [g["lr"] for g in opt.param_groups]
    model, optimizer = accelerator.prepare(model, opt)
    ckpt, log_path, best_path = out_dir / CKPT, out_dir / "train_log.jsonl", out_dir / "best.safetensors"
    epoch, step, global_step, seconds, samples = 0, 0, 0, 0.0, 0
    st: dict = {}
    if (ckpt / CKPT_FILES.position).is_file():
        st = _load_checkpoint(ckpt, model, optimizer)
        epoch, step, global_step = st["epoch"], st["step"], st["global_step"]
        seconds, samples = st["seconds"], st["samples"]
        log.info("%s: resuming at epoch %d step %d", spec.name, epoch, step)
        if log_path.is_file():
            _truncate_log(log_path, global_step, len((st.get("early_stopping") or {}).get("losses", [])))
    else:
        for stale in (log_path, best_path):
            stale.unlink(missing_ok=True)
    stopper = EarlyStopping.from_state(cfg.early_stopping_patience, cfg.early_stopping_min_delta, st.get("early_stopping"))
    spe = reader.steps_per_epoch(cfg.batch_size)
    total = planned_steps(spe, cfg.epochs, cfg.max_steps)
    schedule = LrSchedule.from_config(cfg, total)
    scheduler = make_scheduler(opt, schedule, base_lrs, global_step)
    bar = tqdm(total=total, initial=global_step, desc=f"train {spec.name}", disable=not progress, leave=False)
    model.train()
    unfreeze_step = int(round(cfg.encoder_unfreeze_at * total))
    raw = accelerator.unwrap_model(model)
    method = debias_method(spec, cfg.debias)
    has_live = hasattr(raw, "encoder_live") and getattr(raw, "encoder", None) is not None

    def checkpoint() -> None:
        meta = {"epoch": epoch, "step": step, "global_step": global_step, "seconds": seconds, "samples": samples,
                "early_stopping": stopper.state()}
        _save_checkpoint(ckpt, raw, optimizer, meta)

    logf = open(log_path, "a")  # noqa: SIM115 - closed in finally
    try:
        while epoch < cfg.epochs and global_step < total and not stopper.stopped:
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
                if method == "hccp":
                    d, dstats = hccp_loss(raw, out, batch, margin=cfg.hccp_margin, temperature=cfg.hccp_temperature,
                                          weight=cfg.hccp_weight)
                    loss = loss + d
                    stats.update(dstats)
                if method == "prectr":
                    d, dstats = debias_loss(
                        raw, out, batch, g,
                        margin=cfg.debias_margin, threshold=cfg.debias_ctr_threshold,
                        weight=cfg.debias_weight, noise_std=cfg.debias_noise_std,
                        p1=cfg.debias_rsl_p1, p2=cfg.debias_rsl_p2, rsl_weight=cfg.rsl_loss_weight,
                        truncation=cfg.debias_truncation,
                    )
                    loss = loss + d
                    stats.update(dstats, debias_loss=float(d.detach()))
                optimizer.zero_grad(set_to_none=True)
                accelerator.backward(loss)
                lr = opt.param_groups[0]["lr"]
                optimizer.step()
                scheduler.step()
                step += 1
                global_step += 1
                samples += int(batch["label"].shape[0])
                seconds += time.perf_counter() - t0
                rec = {"global_step": global_step, "epoch": epoch, "lr": lr, "loss": float(loss.detach()), **stats}
                logf.write(json.dumps(rec) + "\n")
                bar.update(1)
                if global_step >= total:
                    break
                if cfg.checkpoint_every > 0 and global_step % cfg.checkpoint_every == 0 and step < spe:
                    logf.flush()  # (the epoch's last step is checkpointed below, after validation)
                    checkpoint()
            # the epoch is over (or the step cap cut it short): validate, then checkpoint the boundary
            if valid is not None:
                vl = valid_loss(raw, valid, valid_batch_size(cfg), progress)
                model.train()  # back to training mode; drops the encodings cached for validation
                if stopper.update(epoch, vl):
                    _save_best(best_path, raw, epoch, vl)
                logf.write(json.dumps({"event": "valid", "epoch": epoch, "global_step": global_step, "valid_loss": vl,
                                       "best_epoch": stopper.best_epoch, "stopped": stopper.stopped}) + "\n")
            epoch, step = epoch + 1, 0
            logf.flush()
            checkpoint()
    finally:
        logf.close()
        bar.close()
    if hasattr(raw, "encoder_live") and raw.encoder is not None:
        raw.encoder_live = True
    if stopper.best_epoch is not None:
        _load_best(best_path, raw, stopper.best_epoch)
    save_file(state_tensors(raw), str(out_dir / "model.safetensors"))
    return {
        "steps": global_step,
        "samples": samples,
        "train_seconds": round(seconds, 3),
        "samples_per_s": round(samples / seconds, 1) if seconds > 0 else None,
        "epochs_run": epoch,
        "best_epoch": stopper.best_epoch,
        "best_valid_loss": stopper.best_loss,
        "valid_losses": list(stopper.losses),
        "stopped_early": stopper.stopped,
        "lr_schedule": cfg.lr_schedule,
    }


def _load_best(path: Path, model: torch.nn.Module, epoch: int) -> None:
    """Put the best epoch's weights into ``model``; refuse a file from another epoch."""
    load_weights(path, model, what="best ranker weights", expect={"epoch": str(epoch)})
    model.train()  # drop any encodings cached from other weights


@torch.no_grad()
def predict(
    model: torch.nn.Module, reader: FeatureReader, batch_size: int, desc: str = "predict", progress: bool = True
) -> dict:
    """Logits (and, for PRECTR variants, P factored, tau, gate weight w1) over a whole feature file."""
    model.eval()
    if getattr(model, "encoder_live", False) and model._tuned is None:
        model.cache_targets()  # every pair once, reused by the later predict calls of this model
    keys = ("logit", "p_factored", "tau")
    out: dict[str, list[torch.Tensor]] = {k: [] for k in (*keys, "gate1")}
    batches = reader.batches(batch_size)
    for batch in tqdm(batches, total=reader.steps_per_epoch(batch_size), desc=desc, leave=False, disable=not progress):
        o = model(batch)
        for k in keys:
            if k in o:
                out[k].append(o[k].float())
        if "gate" in o:
            out["gate1"].append(o["gate"][:, 0].float())
    return {k: torch.cat(v).numpy() for k, v in out.items() if v}
