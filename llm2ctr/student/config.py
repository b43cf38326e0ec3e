"""Student stage configuration (defaults: the paper's 3-layer ~2M-parameter encoder)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class StudentConfig:
    """Tokenizer, encoder and distillation training. Owned by the student stage; extend freely."""

    vocab_size: int = 12000
    num_layers: int = 3
    d_model: int = 128
    num_heads: int = 4
    ffn_dim: int = 256
    max_length: int = 64
    mse_weight: float = 1.0
    lr: float = 1e-3
    batch_size: int = 256
    epochs: int = 3
    seed: int = 0
