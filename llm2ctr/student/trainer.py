"""Distillation trainer on accelerate, with checkpoints that resume exactly.

Why hand-rolled batching instead of a prepared DataLoader: the data order is a pure function of
(seed, epoch) and the position in it is two integers, so a checkpoint (weights, optimizer,
scheduler, torch RNG, epoch, batch index, early-stopping state) restarts on the very next batch
and a killed-then-resumed run ends with the same weights as an uninterrupted one. Each process
takes its own slice of every global batch (DistributedSampler-style) under ``accelerate launch``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator
from tqdm.auto import tqdm
from transformers import get_cosine_schedule_with_warmup

from llm2ctr.student.config import StudentConfig
from llm2ctr.student.data import PairArrays
from llm2ctr.student.decision import macro_f1
from llm2ctr.student.losses import DistillLoss
from llm2ctr.student.modeling import Student
from llm2ctr.training import (
    load_checkpoint,
    load_weights,
    read_position,
    save_checkpoint,
    save_weights,
    truncate_log,
)

log = logging.getLogger(__name__)


def _fingerprint(scfg: StudentConfig, variant: str, train: PairArrays, valid: PairArrays | None) -> dict[str, Any]:
    """What must match for a checkpoint to be resumed rather than discarded: config and data."""
    from dataclasses import asdict

    keep = {k: v for k, v in asdict(scfg).items() if k not in ("checkpoint_every", "log_every")}
    h = hashlib.sha256()
    for part in (train, valid):
        if part is not None:
            h.update("\x1f".join(part.pair_ids.tolist()).encode())
            h.update(part.input_ids.tobytes())
            h.update(part.labels.tobytes())
            h.update(part.teacher.tobytes())
            h.update(part.soft.tobytes())
    return {"config": keep, "variant": variant, "n_train": len(train), "data_sha256": h.hexdigest()}


@torch.no_grad()
def evaluate_loss(loss_fn: DistillLoss, data: PairArrays, batch_size: int, device) -> dict[str, float]:
    """Row-weighted mean of each loss part over ``data`` (eval mode, no dropout), and head macro-F1."""
    was = loss_fn.model.training
    loss_fn.model.eval()
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    preds, golds = [], []
    for s in range(0, len(data), batch_size):
        idx = np.arange(s, min(s + batch_size, len(data)))
        batch = data.batch(idx, device)
        out = loss_fn.model(input_ids=batch["input_ids"], token_type_ids=batch["token_type_ids"],
                            attention_mask=batch["attention_mask"])
        _, parts = loss_fn(batch, out)
        lab = batch["labels"] >= 0
        n_lab = int(lab.sum())
        n_t = int(batch["has_teacher"].sum())
        if n_lab and loss_fn.has_head_objective:
            preds.append(out.logits[lab].argmax(-1).cpu().numpy())
            golds.append(batch["labels"][lab].cpu().numpy())
        for k, v in parts.items():
            w = n_lab if k == "ce" else len(idx) if k == "loss" else n_t
            sums[k] = sums.get(k, 0.0) + v * w
            counts[k] = counts.get(k, 0) + w
    loss_fn.model.train(was)
    out = {k: sums[k] / counts[k] for k in sums if counts[k]}
    out["objective"] = (
        out.get("ce", 0.0) * loss_fn.use_ce
        + loss_fn.kd_weight * out.get("kd", 0.0) * loss_fn.use_kd
        + loss_fn.mse_weight * out.get(loss_fn.distill_loss, 0.0) * loss_fn.use_distill
    )
    if preds:
        out["macro_f1"] = macro_f1(np.concatenate(golds), np.concatenate(preds))
    return out


def early_stopping_criterion(metrics: dict[str, float], metric: str) -> float:
    """Lower is better: -macro-F1 when asked for and measured (heads), else the objective."""
    if metric == "macro_f1" and "macro_f1" in metrics:
        return -metrics["macro_f1"]
    return metrics["objective"]


def loss_for(model, scfg: StudentConfig, variant: str, train: PairArrays) -> DistillLoss:
    """The variant's loss with the statistics it needs from the training rows (class weights, scale)."""
    weights = None
    lab = train.labels[train.labels >= 0]
    if scfg.class_weight == "balanced" and len(lab):
        counts = np.bincount(lab, minlength=4).astype(np.float64)
        weights = np.where(counts > 0, len(lab) / (4 * np.maximum(counts, 1)), 0.0)
        weights = torch.from_numpy(np.minimum(weights, 10.0))
    elif scfg.class_weight not in ("balanced", "none"):
        raise ValueError(f"student.class_weight={scfg.class_weight!r}: expected 'balanced' or 'none'")
    scale = center = None
    if train.has_teacher.any():
        center = torch.from_numpy(train.teacher[train.has_teacher].mean(axis=0).astype(np.float32))
        sd = train.teacher[train.has_teacher].std(axis=0)
        # near-constant dims (RAG prompts share a long prefix; MiniLM even has a constant one) would get
        # unbounded weights: floor each sd at a tenth of the median dimension's
        scale = torch.from_numpy(np.maximum(sd, 0.1 * max(float(np.median(sd)), 1e-8)).astype(np.float32))
    return DistillLoss(model, variant, scfg.mse_weight, scfg.distill_loss, scfg.kd_weight, scfg.kd_temperature,
                       class_weights=weights, teacher_scale=scale, teacher_center=center)


class StudentTrainer:
    """Train ``model`` on ``train`` (eval on ``valid`` each epoch); state lives in ``run_dir``."""

    def __init__(
        self,
        model: Student,
        train: PairArrays,
        valid: PairArrays | None,
        scfg: StudentConfig,
        variant: str,
        run_dir: str | Path,
    ) -> None:
        self.scfg = scfg
        self.variant = variant
        self.run_dir = Path(run_dir)
        self.train_data = train
        self.valid_data = valid if valid is not None and len(valid) else None
        self.acc = Accelerator(mixed_precision=scfg.mixed_precision, cpu=not torch.cuda.is_available())
        self.world = self.acc.num_processes
        self.rank = self.acc.process_index
        self.global_batch = scfg.batch_size * self.world
        self.batches_per_epoch = max(1, math.ceil(len(train) / self.global_batch))
        self.steps_per_epoch = math.ceil(self.batches_per_epoch / scfg.grad_accum)
        self.total_steps = self.steps_per_epoch * scfg.epochs
        decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "emb" not in n]
        no_decay = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "emb" not in n)]
        optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": scfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=scfg.lr,
        )
        self.scheduler = get_cosine_schedule_with_warmup(
            optimizer, int(scfg.warmup_ratio * self.total_steps), self.total_steps
        )
        self.model, self.optimizer = self.acc.prepare(model, optimizer)
        self.raw_model: Student = self.acc.unwrap_model(self.model)
        self.loss_fn = loss_for(self.model, scfg, variant, train)
        self.eval_loss_fn = loss_for(self.raw_model, scfg, variant, train)
        self.fp = _fingerprint(scfg, variant, train, self.valid_data)
        # position and early-stopping state (all saved in checkpoints)
        self.epoch = 0
        self.batch_in_epoch = 0
        self.step = 0
        self.best = math.inf
        self.bad_epochs = 0
        self.stopped_early = False
        self.history: list[dict[str, Any]] = []
        self.last_step_loss: float | None = None
        self._tb = None

    # ---- checkpoints
    @property
    def ckpt_dir(self) -> Path:
        return self.run_dir / "checkpoint"

    def save_checkpoint(self) -> None:
        """Write weights, optimizer, scheduler, RNG and position atomically (main process)."""
        self.acc.wait_for_everyone()
        if self.acc.is_main_process:  # files: model.safetensors, trainer_state.pt, position.json
            position = {
                "fingerprint": self.fp,
                "epoch": self.epoch,
                "batch_in_epoch": self.batch_in_epoch,
                "step": self.step,
                "best": self.best if math.isfinite(self.best) else None,
                "bad_epochs": self.bad_epochs,
                "stopped_early": self.stopped_early,
                "history": self.history,
            }
            # torch RNG: dropout draws from it
            save_checkpoint(self.ckpt_dir, self.raw_model, self.optimizer, self.scheduler, position=position,
                            rng=("torch",))
        self.acc.wait_for_everyone()

    def maybe_resume(self) -> bool:
        """Load the checkpoint if it belongs to this run's config and data; else start fresh."""
        pos = read_position(self.ckpt_dir, what="student checkpoint")
        if pos is None:
            return False
        if pos.get("fingerprint") != json.loads(json.dumps(self.fp)):
            log.warning("%s: checkpoint is from a different config or data; starting from scratch", self.ckpt_dir)
            return False
        pos = load_checkpoint(self.ckpt_dir, self.raw_model, self.optimizer, self.scheduler, what="student checkpoint")
        self.epoch, self.batch_in_epoch, self.step = pos["epoch"], pos["batch_in_epoch"], pos["step"]
        self.best = math.inf if pos["best"] is None else pos["best"]
        self.bad_epochs, self.stopped_early = pos["bad_epochs"], pos["stopped_early"]
        self.history = pos["history"]
        self._truncate_log()
        log.info("resumed %s at epoch %d batch %d (step %d)", self.run_dir, self.epoch, self.batch_in_epoch, self.step)
        return True

    # ---- logs
    @property
    def log_file(self) -> Path:
        return self.run_dir / "log.jsonl"

    def _truncate_log(self) -> None:
        """Drop log lines written after the checkpoint (they will be written again)."""
        if self.acc.is_main_process:
            truncate_log(self.log_file, lambda rec: rec.get("step", 0) <= self.step)

    def _log(self, record: dict[str, Any]) -> None:
        if not self.acc.is_main_process:
            return
        with open(self.log_file, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")
        if self._tb is None:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(str(self.run_dir / "tb"))
            except ImportError:  # tensorboard is optional
                self._tb = False
        if self._tb:
            for k, v in record.items():
                if isinstance(v, (int, float)) and k != "step":
                    self._tb.add_scalar(k, v, record.get("step", 0))

    # ---- training
    def _epoch_order(self, epoch: int) -> np.ndarray:
        """This process's row order for ``epoch``: a seeded permutation padded to whole global batches."""
        perm = np.random.default_rng([self.scfg.seed, epoch]).permutation(len(self.train_data))
        if self.world > 1:  # every process needs a full batch at every step (DDP all-reduce)
            perm = np.resize(perm, self.batches_per_epoch * self.global_batch)
        return perm

    def _batch_rows(self, order: np.ndarray, b: int) -> np.ndarray:
        start = b * self.global_batch + self.rank * self.scfg.batch_size
        return order[start : start + self.scfg.batch_size]

    def train(self, max_steps: int | None = None) -> dict[str, Any]:
        """Run to the end (or ``max_steps`` optimizer steps, for tests); best weights end up in the model."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(self.scfg.seed)
        if not self.maybe_resume() and self.acc.is_main_process:
            self.log_file.unlink(missing_ok=True)
            (self.run_dir / "best.safetensors").unlink(missing_ok=True)
        device = self.acc.device
        self.model.train()
        t0, seen = time.perf_counter(), 0
        bar = tqdm(total=self.total_steps, initial=self.step, desc=f"train {self.variant}",
                   disable=not self.acc.is_local_main_process)
        accum = self.scfg.grad_accum
        while self.epoch < self.scfg.epochs and not self.stopped_early:
            order = self._epoch_order(self.epoch)
            step_parts: list[dict[str, float]] = []
            while self.batch_in_epoch < self.batches_per_epoch:
                if max_steps is not None and self.step >= max_steps:
                    bar.close()
                    return self.summary(time.perf_counter() - t0, seen)
                b = self.batch_in_epoch
                boundary = (b + 1) % accum == 0 or b == self.batches_per_epoch - 1
                n_micro = accum if (b // accum + 1) * accum <= self.batches_per_epoch else self.batches_per_epoch % accum
                rows = self._batch_rows(order, b)
                batch = self.train_data.batch(rows, device)
                ctx = self.acc.no_sync(self.model) if not boundary else contextlib.nullcontext()
                with ctx, self.acc.autocast():
                    loss, parts = self.loss_fn(batch)
                    self.acc.backward(loss / n_micro)
                step_parts.append(parts)
                seen += len(rows)
                self.batch_in_epoch += 1
                if boundary:
                    if self.scfg.max_grad_norm > 0:
                        self.acc.clip_grad_norm_(self.model.parameters(), self.scfg.max_grad_norm)
                    self.optimizer.step()
                    self.scheduler.step()
                    self.optimizer.zero_grad(set_to_none=True)
                    self.step += 1
                    bar.update(1)
                    rec = {k: float(np.mean([p[k] for p in step_parts if k in p]))
                           for k in {k for p in step_parts for k in p}}
                    step_parts = []
                    if self.step % self.scfg.log_every == 0 or self.step <= 5:
                        self._log({"step": self.step, "epoch": self.epoch, "lr": self.scheduler.get_last_lr()[0], **rec})
                    bar.set_postfix(loss=f"{rec['loss']:.4f}")
                    self.last_step_loss = rec["loss"]
                    if self.scfg.checkpoint_every and self.step % self.scfg.checkpoint_every == 0:
                        self.save_checkpoint()
            self._end_epoch(device)
        bar.close()
        best = self.run_dir / "best.safetensors"
        if best.is_file():
            load_weights(best, self.raw_model, what="best student weights")
        return self.summary(time.perf_counter() - t0, seen)

    def _end_epoch(self, device) -> None:
        rec: dict[str, Any] = {"step": self.step, "epoch": self.epoch}
        if self.valid_data is not None:
            ev = evaluate_loss(self.eval_loss_fn, self.valid_data, self.scfg.batch_size * 2, device)
            rec.update({f"valid_{k}": v for k, v in ev.items()})
            criterion = early_stopping_criterion(ev, self.scfg.early_stopping)
            if criterion < self.best - 1e-6:
                self.best, self.bad_epochs = criterion, 0
                if self.acc.is_main_process:
                    save_weights(self.run_dir / "best.safetensors", self.raw_model)
            else:
                self.bad_epochs += 1
                if self.scfg.patience and self.bad_epochs >= self.scfg.patience:
                    self.stopped_early = True
            rec["best_criterion"] = self.best
        self.history.append(rec)
        self._log(rec)
        self.epoch += 1
        self.batch_in_epoch = 0
        self.save_checkpoint()

    def summary(self, seconds: float, seen: int) -> dict[str, Any]:
        return {
            "variant": self.variant,
            "steps": self.step,
            "epochs_done": self.epoch,
            "stopped_early": self.stopped_early,
            "best_valid_criterion": self.best if math.isfinite(self.best) else None,
            "early_stopping": self.scfg.early_stopping,
            "history": self.history,
            "train_rows": len(self.train_data),
            "samples_per_s": seen / seconds if seconds > 0 and seen else None,
            "processes": self.world,
        }
