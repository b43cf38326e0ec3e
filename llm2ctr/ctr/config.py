"""Ranker stage configuration (defaults: PRECTR-V2's published values)."""

from __future__ import annotations

from dataclasses import dataclass, field

# every model a study check compares (llm2ctr/ctr/study_checks.py) plus the first baselines
# (module ablations with the encoder frozen: a fine-tuned variant costs ~5x a cached one, and three
# seeds of the suite must fit 20 minutes on 2 CPU cores; the fine-tuned ablations are in the registry)
STUDY_MODELS = ("lr", "dnn", "wide_deep", "prectr_v2", "v2_frozen", "v2_frozen_no_coldstart", "v2_frozen_no_debias",
                "v2_frozen_no_lexical", "dnn_no_lexical", "dnn_oracle_sensitivity", "dnn_exploration")


@dataclass
class CtrConfig:
    """PRECTR-V2 ranker training. Owned by the ctr stage; extend freely."""

    # The paper's sample code uses Adam 1e-4 at batch 4096 on ~1.6B impressions a day. On a log of
    # 100k impressions that is ~25 steps an epoch and nothing learns (every model at AUC ~0.5 on a
    # real-pairs log); batch 1024 at 2e-3 with warm-up + cosine decay and early stopping trains
    # small and large logs alike (measured: docs/ranker.md). Set the paper's values for its scale.
    lr: float = 2e-3
    enc_lr_scale: float = 0.1  # encoder fine-tuned at 0.1x the ranker's lr (paper)
    batch_size: int = 1024
    epochs: int = 20  # the maximum: early stopping on the validation loss ends most runs sooner
    debias_margin: float = 0.075
    debias_ctr_threshold: float = 0.08
    debias_weight: float = 1.0
    # noise added to r_target of a synthetic negative: per-dimension sd = this x the embedding's RMS entry
    # (the paper's N(0, 1) on unit-scale entries; see ctr/debias.py)
    debias_noise_std: float = 1.0
    debias_truncation: str = "sample"  # sample: per pair f(x+) < threshold | batch: the paper's batch mean
    debias_rsl_p1: float = 0.2  # u < p1 -> rsl 1
    debias_rsl_p2: float = 0.6  # p1 <= u < p2 -> rsl 2, else 3
    # which exposure debias the debiasing models use: prectr (the paper's synthetic lower-relevance
    # negatives) | hccp (hybrid samples + Margin InfoNCE, ctr/hccp.py) | none
    debias: str = "prectr"
    hybrid_negatives: int = 8  # HCCP: negatives per click (unexposed candidates + lower-relevance exposed)
    hccp_margin: float = 0.5  # HCCP: added to every negative's logit inside the InfoNCE softmax
    hccp_temperature: float = 1.0  # HCCP: logits are divided by this before the softmax
    # HCCP: weight of the Margin InfoNCE term next to the click BCE. Chosen on validation AUC among 0.02 / 0.1 /
    # 0.5 (seed 0, quickstart world: 0.7575 / 0.7271 / see docs/ranker.md); 0.1 cost 0.04 exposed AUC
    hccp_weight: float = 0.02
    # long-history user tower (prectr_v2_longhist): behaviours read per impression, learned query tokens
    long_history_len: int = 200
    long_history_queries: int = 8
    # QIN: behaviours kept by the sparse target attention (top-k by relevance to the target)
    qin_top_k: int = 8
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
    # torch's deterministic kernels while training: without them two runs with 2 threads drifted
    # apart from step 3 (accumulating index ops reduce in thread order); same seed -> same weights
    deterministic: bool = True
    # --- schedule and early stopping
    # `epochs` above is the MAXIMUM; with a validation set (the `valid_share` rows, jobs.train_one)
    # training stops once the validation BCE has not improved by `early_stopping_min_delta` for
    # `early_stopping_patience` epochs, and the best epoch's weights are kept. Patience 1: measured on
    # the quickstart world, every neural ranker's validation loss bottoms out at epoch 2 and rises
    # monotonically after (hashed id embeddings overfit from the second pass over the log, the
    # "one-epoch" behaviour of CTR models), so a second patience epoch only costs time; LR improves
    # smoothly for ~17 epochs and stops when it flattens.
    early_stopping_patience: int = 1  # epochs without improvement before stopping; 0 = off
    early_stopping_min_delta: float = 1e-4  # smallest validation-loss drop that counts as one
    # cosine | linear | constant, laid over the planned steps (steps/epoch * epochs, or max_steps):
    # the decay lets a large lr make fast progress early and still settle at the end, whatever the
    # number of steps (23 on a 10k-row log at batch 4096, thousands on a large one).
    lr_schedule: str = "cosine"
    # linear warm-up from 0 over this share of the planned steps (>= 1 step when > 0): 5% keeps
    # Adam's first, noisy moment estimates from taking full-size steps on any run length
    warmup_share: float = 0.05
    min_lr_ratio: float = 0.05  # the decay's floor as a share of the peak lr (the last planned step)
    # --- suite
    models: list[str] = field(default_factory=list)  # empty = the default suite
    time_budget_s: float = 0.0  # 0 = none; otherwise skip remaining models past this budget
    hub_repo: str = ""  # for `ctr push`
    # --- seeded study (`llm2ctr ctr study`): models over seeds, checks with 95% intervals
    study_models: list[str] = field(default_factory=lambda: list(STUDY_MODELS))
    study_seeds: int = 3  # seeds ctr.seed .. ctr.seed + n - 1
    study_bootstrap: int = 200  # bootstrap replicates over test requests
