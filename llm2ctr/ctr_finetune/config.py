"""Ranker stage configuration (defaults: PRECTR-V2's published values)."""

from __future__ import annotations

from dataclasses import dataclass, field


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
    debias_noise_std: float = 1.0  # paper: text embedding + N(0, 1)
    debias_rsl_p1: float = 0.2  # u < p1 -> rsl 1
    debias_rsl_p2: float = 0.6  # p1 <= u < p2 -> rsl 2, else 3
    freeze_encoder: bool = False
    # share of training steps that read r_target from the cache before the encoder is unfrozen
    # (0 = fine-tune from the first step, the paper; 0.75 = last quarter only, 4x cheaper)
    encoder_unfreeze_at: float = 0.0
    seed: int = 0
    # --- model sizes (small: the quickstart suite must train in minutes on 2 CPU cores)
    hash_buckets: int = 200_003  # sparse f_* values hashed into this many embedding rows
    sparse_dim: int = 8
    hidden_dims: list[int] = field(default_factory=lambda: [128, 64])
    attn_dim: int = 32
    attn_heads: int = 2
    rsl_loss_weight: float = 0.1  # auxiliary relevance CE on rows with a known rsl
    weight_decay: float = 0.0
    # --- features
    position_feature: bool = True  # hashed position (absorbs position bias during training)
    cold_start_max_hist: int = 3  # cold-start user: fewer than this many past behaviours
    text_max_length: int = 32  # tokens per (query, item) pair when the encoder runs
    encode_batch_size: int = 512
    bm25_k1: float = 1.2
    bm25_b: float = 0.75
    shard_rows: int = 65_536  # rows per Arrow record batch of the feature tables (memory bound)
    valid_share: float = 0.1  # last share of the training window (by ts) held out for calibration
    # --- training options
    neg_sample_rate: float = 1.0  # keep negatives with this probability, re-weight them by 1/rate
    hard_neg_ratio: float = 0.0  # >0: keep only the hardest share of negatives per batch (OHEM)
    calibrate: bool = True  # temperature scaling fitted on the validation rows
    checkpoint_every: int = 200  # steps between resumable checkpoints
    max_steps: int = 0  # 0 = no cap; otherwise stop after this many optimizer steps
    num_threads: int = 0  # torch intra-op threads; 0 = torch's default (small batches: 1 is often fastest)
    # --- suite
    models: list[str] = field(default_factory=list)  # empty = the default suite
    time_budget_s: float = 0.0  # 0 = none; otherwise skip remaining models past this budget
    hub_repo: str = ""  # for `ctr push`
