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
    # --- objective: the variant names its terms (losses.py): sft (class-weighted CE on labelled pairs),
    # kd (KL to the teacher head's soft labels on every pair with a teacher vector), mse (teacher-space
    # projection vs the teacher vector, distance distill_loss). `variant` is the student the ranker uses
    # (student/model); docs/student.md has the measurements behind the defaults.
    variant: str = "sft+mse"
    # the MSE is a mean over the teacher's dims: for unit-norm 384-d vectors 100 puts it on the CE's scale
    # (measured best); scale it with the teacher dim (x dim/384) or use a scale-free distance
    mse_weight: float = 100.0
    distill_loss: str = "mse"  # mse | cosine | scaled_mse | centered_cosine (losses.py)
    kd_weight: float = 1.0
    kd_temperature: float = 2.0
    kd_head_rows: int = 20000  # labelled training rows the teacher head (soft-label source) is fitted on
    class_weight: str = "balanced"  # balanced | none: CE weights and the teacher head's class weights
    # argmax | tuned: per-class logit offsets tuned on validation macro-F1, folded into the classifier bias
    decision_rule: str = "argmax"
    # seeds the distillation table averages over: the student_train stage trains each variant for
    # seeds seed .. seed+eval_seeds-1 (seed `seed` is the artifact; the others only feed student eval)
    eval_seeds: int = 3
    # --- optimisation
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_ratio: float = 0.06
    batch_size: int = 256
    grad_accum: int = 1
    epochs: int = 10
    max_grad_norm: float = 1.0
    mixed_precision: str = "no"  # accelerate: no / fp16 / bf16
    # torch intra-op threads while training; 0 = torch's default. The 2M-parameter student's small
    # matmuls gain little from a second thread: on the shared 2-core machine (load ~8, 2026-12-03)
    # 38 steps of batch 128 took 15 s / 17 CPU-s at 1 thread vs 45 s / 44 CPU-s at 2
    num_threads: int = 0
    patience: int = 3  # epochs without valid improvement before early stopping; 0 = off
    early_stopping: str = "macro_f1"  # macro_f1 (head variants; best epoch kept) | objective
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
    # unlabelled queries the labelled set never saw (impression log, or the synthetic generator), each
    # paired like a labelled query; never a labelled valid/test query (distill_pairs.py)
    pairs_new_queries: int = 0
    # --- export
    onnx_opset: int = 17
    onnx_int8: bool = True
