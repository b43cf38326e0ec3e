"""The student as stock Hugging Face parts: ``BertModel`` encoder, BERT's classification head, a linear
projection to the teacher's space.

Nothing here is a new architecture; a saved student is ``model_type: bert`` and loads with plain
``transformers``/``sentence-transformers``. What we add is configuration and two small pieces:
masked mean pooling (what sentence-transformers' ``Pooling(mode="mean")`` and vLLM's MEAN pooler
compute, so a row's vector does not depend on its batch's padding) and ``Student``, the training
bundle that runs encoder, relevance head and projection in one forward.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from transformers import BertConfig, BertForSequenceClassification, BertModel
from transformers.utils import ModelOutput

from llm2ctr.data.schema import RSL_NAMES

LABELS = [f"{k}:{RSL_NAMES[k]}" for k in sorted(RSL_NAMES)]  # id2label of the relevance head


def student_config(
    vocab_size: int,
    d_model: int = 128,
    num_layers: int = 3,
    num_heads: int = 4,
    ffn_dim: int = 256,
    max_length: int = 64,
    dropout: float = 0.1,
    pad_token_id: int = 0,
) -> BertConfig:
    """A stock ``BertConfig`` of the paper's shape (3 x 128, 4 heads, FFN 256: ~2M parameters at 12k vocab)."""
    if d_model % num_heads:
        raise ValueError(f"d_model={d_model} must be divisible by num_heads={num_heads}")
    return BertConfig(
        vocab_size=vocab_size,
        hidden_size=d_model,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        intermediate_size=ffn_dim,
        max_position_embeddings=max(max_length, 8),
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
        pad_token_id=pad_token_id,
        num_labels=len(LABELS),
        id2label=dict(enumerate(LABELS)),
        label2id={name: i for i, name in enumerate(LABELS)},
    )


POOLING_MODES = ("mean", "cls")


def pool(states: torch.Tensor, attention_mask: torch.Tensor, mode: str = "mean") -> torch.Tensor:
    """[B, d] from token states: masked mean of the real tokens, or the [CLS] state (right padding)."""
    if mode == "cls":
        return states[:, 0]
    if mode != "mean":
        raise ValueError(f"pooling={mode!r}: expected one of {POOLING_MODES}")
    mask = attention_mask.to(states.dtype).unsqueeze(-1)
    return (states * mask).sum(1) / mask.sum(1).clamp(min=1.0)


class PairEncoder(nn.Module):
    """A ``BertModel`` read through masked mean pooling: the vector the ranker uses and fine-tunes."""

    def __init__(self, bert: BertModel, pooling: str = "mean") -> None:
        super().__init__()
        pool(torch.zeros(1, 1, 1), torch.ones(1, 1), pooling)  # validate the mode
        self.bert = bert
        self.pooling = pooling

    @property
    def dim(self) -> int:
        return self.bert.config.hidden_size

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        states = self.bert(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).last_hidden_state
        return pool(states, attention_mask, self.pooling)

    encode = forward


@dataclass
class StudentOutput(ModelOutput):
    """Pooled pair vector, relevance logits (the stock head's) and the teacher-space projection."""

    pooled: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    projection: torch.Tensor | None = None


class Student(nn.Module):
    """``BertForSequenceClassification`` (encoder + relevance head) plus the teacher projection.

    The logits are the stock model's own forward (pooler on [CLS], dropout, classifier), so
    ``AutoModelForSequenceClassification`` on the saved folder gives the same numbers; the pooled
    vector is the masked mean of the same forward's last hidden states.
    """

    def __init__(self, relevance: BertForSequenceClassification, projection: nn.Linear, pooling: str = "mean") -> None:
        super().__init__()
        pool(torch.zeros(1, 1, 1), torch.ones(1, 1), pooling)  # validate the mode
        self.relevance = relevance
        self.projection = projection
        self.pooling = pooling

    @classmethod
    def from_config(cls, config: BertConfig, teacher_dim: int, pooling: str = "mean") -> Student:
        """Fresh weights (BERT's init; the projection like BERT's linears: N(0, 0.02), zero bias)."""
        projection = nn.Linear(config.hidden_size, teacher_dim)
        nn.init.normal_(projection.weight, 0.0, config.initializer_range)
        nn.init.zeros_(projection.bias)
        relevance = BertForSequenceClassification(config)
        # BERT's pooler is tanh(W h_cls + b), pretrained in BERT; from scratch with W ~ N(0, 0.02) the
        # head is a product of two tiny matrices and SFT sat at the majority class for a whole
        # quickstart run in one seed of three. Starting W at the identity makes the head one linear
        # map of the [CLS] state (the pooler still trains); docs/student.md has the measurements.
        with torch.no_grad():
            relevance.bert.pooler.dense.weight.copy_(torch.eye(config.hidden_size))
            relevance.bert.pooler.dense.bias.zero_()
        return cls(relevance, projection, pooling)

    @property
    def config(self) -> BertConfig:
        return self.relevance.config

    @property
    def teacher_dim(self) -> int:
        return self.projection.out_features

    def encoder(self) -> PairEncoder:
        """The encoder alone (shares weights with this student)."""
        return PairEncoder(self.relevance.bert, self.pooling)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
    ) -> StudentOutput:
        out = self.relevance(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids, output_hidden_states=True
        )
        pooled = pool(out.hidden_states[-1], attention_mask, self.pooling)
        return StudentOutput(pooled=pooled, logits=out.logits, projection=self.projection(pooled))

    def encode(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Pooled pair vector [B, d] (no heads)."""
        return self.encoder()(input_ids, attention_mask, token_type_ids)
