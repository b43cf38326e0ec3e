"""Student stage configuration (defaults: the paper's 3-layer ~2M-parameter encoder)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class StudentConfig:
    """Tokenizer, encoder and distillation training. Owned by the student stage; extend freely."""

    # --- tokenizer / model (paper: 3 layers, ~2M parameters)
    vocab_size: int = 12000
    num_layers: int = 3
    d_model: int = 128
    num_heads: int = 4
    ffn_dim: int = 256
    max_length: int = 64
    dropout: float = 0.1
    # the pooled vector: "cls" (the [CLS] state the stock relevance head reads; distillation and SFT then
    # shape one vector) or "mean" (masked mean of real tokens); docs/student.md has the measurements
    pooling: str = "cls"
    # --- objective: CE on labelled pairs + mse_weight * distillation on pairs with a teacher vector
    mse_weight: float = 1.0
    distill_loss: str = "mse"  # "mse" or "cosine"
    # --- optimisation
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_ratio: float = 0.06
    batch_size: int = 256
    grad_accum: int = 1
    epochs: int = 3
    max_grad_norm: float = 1.0
    mixed_precision: str = "no"  # accelerate: no / fp16 / bf16
    patience: int = 2  # epochs without valid improvement before early stopping; 0 = off
    checkpoint_every: int = 200  # optimizer steps between checkpoints (and at each epoch end)
    log_every: int = 20
    seed: int = 0
    # --- data
    # teacher stores to join by pair_id; empty = [{workdir}/teacher/embeddings] plus
    # {workdir}/teacher/distill_embeddings when it exists
    teacher_dirs: list[str] = field(default_factory=list)
    # train on {workdir}/student/distill_pairs (unlabelled, MSE only) when it exists
    use_distill_pairs: bool = True
    # cap on distillation pairs used (0 = all); for quality-vs-count curves
    max_distill_pairs: int = 0
    # --- `student pairs`: unlabelled distillation pairs per query
    pairs_near_k: int = 8  # nearest catalogue items by TF-IDF similarity to the query
    pairs_random_k: int = 8  # random other items of the catalogue
    # --- export
    onnx_opset: int = 17
    onnx_int8: bool = True
