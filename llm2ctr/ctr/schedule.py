"""Learning-rate schedule and early-stopping state of the ranker trainer.

Both are pure functions of counters that the checkpoint stores (the global step; the list of
validation losses), so a resumed run continues them exactly: the schedule is rebuilt from the step
count alone and the early-stopping state round-trips through ``state.json``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
from torch.optim.lr_scheduler import LambdaLR

from llm2ctr.errors import ConfigError

SCHEDULES = ("cosine", "linear", "constant")


def check_options(cfg) -> None:
    """Refuse bad schedule / early-stopping options before any work, naming the config key."""
    if cfg.lr_schedule not in SCHEDULES:
        raise ConfigError(f"ctr.lr_schedule={cfg.lr_schedule!r}: expected one of {', '.join(SCHEDULES)}")
    if not 0.0 <= cfg.warmup_share < 1.0:
        raise ConfigError(f"ctr.warmup_share={cfg.warmup_share}: expected a share in [0, 1)")
    if not 0.0 <= cfg.min_lr_ratio <= 1.0:
        raise ConfigError(f"ctr.min_lr_ratio={cfg.min_lr_ratio}: expected a ratio in [0, 1]")
    if cfg.early_stopping_patience < 0 or cfg.early_stopping_min_delta < 0:
        raise ConfigError(
            f"ctr.early_stopping_patience={cfg.early_stopping_patience}, "
            f"ctr.early_stopping_min_delta={cfg.early_stopping_min_delta}: expected values >= 0"
        )


def planned_steps(steps_per_epoch: int, epochs: int, max_steps: int = 0) -> int:
    """Steps the run would take without early stopping: the horizon the decay is laid over."""
    total = steps_per_epoch * epochs
    return min(total, max_steps) if max_steps > 0 else total


@dataclass(frozen=True)
class LrSchedule:
    """Multiplier of the peak lr at optimizer step ``s`` (0-based): linear warm-up from 0 over
    ``warmup`` steps, then cosine / linear decay that reaches ``min_ratio`` on the last planned step
    (constant: flat at the peak after the warm-up)."""

    kind: str
    total: int
    warmup: int
    min_ratio: float

    @classmethod
    def from_config(cls, cfg, total: int) -> LrSchedule:
        warm = max(1, round(cfg.warmup_share * total)) if cfg.warmup_share > 0 else 0
        return cls(cfg.lr_schedule, total, min(warm, max(total - 1, 0)), cfg.min_lr_ratio)

    def __call__(self, s: int) -> float:
        if s < self.warmup:
            return s / self.warmup
        if self.kind == "constant":
            return 1.0
        p = min(1.0, (s - self.warmup) / max(1, self.total - 1 - self.warmup))
        shape = 0.5 * (1.0 + math.cos(math.pi * p)) if self.kind == "cosine" else 1.0 - p
        return self.min_ratio + (1.0 - self.min_ratio) * shape


def make_scheduler(optimizer: torch.optim.Optimizer, schedule: LrSchedule, base_lrs: list[float], start_step: int) -> LambdaLR:
    """A LambdaLR positioned so the next optimizer step (``start_step``) uses ``schedule(start_step)``.

    ``base_lrs`` are the configured peak lrs per param group; they are set as ``initial_lr`` so a
    resumed run depends only on the config and the step count, not on lrs saved in the optimizer.
    """
    for g, base in zip(optimizer.param_groups, base_lrs, strict=True):
        g["initial_lr"] = base
    return LambdaLR(optimizer, schedule, last_epoch=start_step - 1)


@dataclass
class EarlyStopping:
    """Validation-loss bookkeeping, per epoch.

    The best weights follow the lowest loss seen; patience counts epochs since the loss last fell
    by at least ``min_delta`` below the reference (the loss at the last such improvement), so tiny
    wobbles neither extend training nor go unrecorded. ``patience`` 0 never stops.
    """

    patience: int
    min_delta: float
    losses: list[float] = field(default_factory=list)
    best_loss: float | None = None
    best_epoch: int | None = None
    ref_loss: float | None = None
    bad_epochs: int = 0
    stopped: bool = False

    def update(self, epoch: int, loss: float) -> bool:
        """Record epoch ``epoch``'s loss; True when it is the new best (save its weights)."""
        self.losses.append(loss)
        finite = math.isfinite(loss)
        best = finite and (self.best_loss is None or loss < self.best_loss)
        if best:
            self.best_loss, self.best_epoch = loss, epoch
        if finite and (self.ref_loss is None or loss < self.ref_loss - self.min_delta):
            self.ref_loss, self.bad_epochs = loss, 0
        else:
            self.bad_epochs += 1
        if self.patience > 0 and self.bad_epochs >= self.patience:
            self.stopped = True
        return best

    def state(self) -> dict:
        return asdict(self)

    @classmethod
    def from_state(cls, patience: int, min_delta: float, state: dict | None) -> EarlyStopping:
        """Restore from a checkpoint; patience and min_delta come from the config."""
        keep = {k: v for k, v in (state or {}).items() if k not in ("patience", "min_delta")}
        return cls(patience, min_delta, **keep)
