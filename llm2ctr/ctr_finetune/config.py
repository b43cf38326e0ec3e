"""Ranker stage configuration (defaults: PRECTR-V2's published values)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class CtrConfig:
    """PRECTR-V2 ranker training. Owned by the ctr_finetune stage; extend freely."""

    lr: float = 1e-4  # paper sample code: Adam 1e-4
    enc_lr_scale: float = 0.1  # encoder fine-tuned at 0.1x the ranker's lr
    batch_size: int = 4096
    epochs: int = 2
    debias_margin: float = 0.075
    debias_ctr_threshold: float = 0.08
    debias_weight: float = 1.0
    freeze_encoder: bool = False
    seed: int = 0
