"""The student: a small pair encoder as a first-class Hugging Face ``PreTrainedModel``.

Input is ``[CLS] query [SEP] item [SEP]`` with segment ids and an attention mask. The pooled
representation is a masked mean over real tokens, so it does not depend on padding side or
length (the article's sample code took CLS from left-padded batches; we do not). Two heads sit on
top: a 4-class relevance classifier (SFT) and a projection to the teacher's dimension (MSE
distillation). Importing this module only defines classes; ``register_auto_classes`` wires them
into ``AutoConfig`` / ``AutoModel``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel
from transformers.utils import ModelOutput

MODEL_TYPE = "llm2ctr-lightweight-encoder"


class LightweightEncoderConfig(PretrainedConfig):
    """Sizes of the encoder and its heads; defaults are the paper's ~2M-parameter student."""

    model_type = MODEL_TYPE

    def __init__(
        self,
        vocab_size: int = 12000,
        d_model: int = 128,
        num_layers: int = 3,
        num_heads: int = 4,
        ffn_dim: int = 256,
        max_position_embeddings: int = 128,
        type_vocab_size: int = 2,
        dropout: float = 0.1,
        layer_norm_eps: float = 1e-12,
        num_labels: int = 4,
        teacher_dim: int = 384,
        pooling: str = "mean",
        pad_token_id: int = 0,
        initializer_range: float = 0.02,
        **kwargs,
    ) -> None:
        if d_model % num_heads:
            raise ValueError(f"d_model={d_model} must be divisible by num_heads={num_heads}")
        if pooling not in ("mean", "cls"):
            raise ValueError(f"pooling={pooling!r}: expected 'mean' or 'cls'")
        self.vocab_size = vocab_size
        self.d_model = d_model
        self.hidden_size = d_model  # the name sentence-transformers and others look for
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.ffn_dim = ffn_dim
        self.max_position_embeddings = max_position_embeddings
        self.type_vocab_size = type_vocab_size
        self.dropout = dropout
        self.layer_norm_eps = layer_norm_eps
        self.teacher_dim = teacher_dim
        self.pooling = pooling
        self.initializer_range = initializer_range
        super().__init__(pad_token_id=pad_token_id, num_labels=num_labels, **kwargs)


@dataclass
class LightweightEncoderOutput(ModelOutput):
    """Token states, the pooled pair vector and both heads' outputs."""

    last_hidden_state: torch.Tensor | None = None
    pooler_output: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    projection: torch.Tensor | None = None


class _Block(nn.Module):
    """Post-LN transformer block (BERT style) with torch's fused scaled-dot-product attention."""

    def __init__(self, cfg: LightweightEncoderConfig) -> None:
        super().__init__()
        self.num_heads = cfg.num_heads
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.out = nn.Linear(cfg.d_model, cfg.d_model)
        self.ln1 = nn.LayerNorm(cfg.d_model, eps=cfg.layer_norm_eps)
        self.ffn = nn.Sequential(
            nn.Linear(cfg.d_model, cfg.ffn_dim), nn.GELU(), nn.Linear(cfg.ffn_dim, cfg.d_model)
        )
        self.ln2 = nn.LayerNorm(cfg.d_model, eps=cfg.layer_norm_eps)
        self.drop = nn.Dropout(cfg.dropout)
        self.attn_dropout = cfg.dropout

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        h = self.num_heads
        q, k, v = self.qkv(x).view(b, t, 3, h, d // h).permute(2, 0, 3, 1, 4).unbind(0)
        a = F.scaled_dot_product_attention(
            q, k, v, attn_mask=attn_mask, dropout_p=self.attn_dropout if self.training else 0.0
        )
        a = a.transpose(1, 2).reshape(b, t, d)
        x = self.ln1(x + self.drop(self.out(a)))
        return self.ln2(x + self.drop(self.ffn(x)))


class LightweightEncoderModel(PreTrainedModel):
    """3-layer pair encoder with a relevance head and a teacher-projection head."""

    config_class = LightweightEncoderConfig
    base_model_prefix = "encoder"
    main_input_name = "input_ids"
    _supports_sdpa = True

    def __init__(self, config: LightweightEncoderConfig) -> None:
        super().__init__(config)
        d = config.d_model
        self.tok_emb = nn.Embedding(config.vocab_size, d, padding_idx=config.pad_token_id)
        self.pos_emb = nn.Embedding(config.max_position_embeddings, d)
        self.seg_emb = nn.Embedding(config.type_vocab_size, d)
        self.emb_ln = nn.LayerNorm(d, eps=config.layer_norm_eps)
        self.emb_drop = nn.Dropout(config.dropout)
        self.layers = nn.ModuleList(_Block(config) for _ in range(config.num_layers))
        self.classifier = nn.Linear(d, config.num_labels)
        self.projection = nn.Linear(d, config.teacher_dim)
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        std = self.config.initializer_range
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, 0.0, std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, 0.0, std)
            if module.padding_idx is not None:
                with torch.no_grad():
                    module.weight[module.padding_idx].zero_()
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)

    def get_input_embeddings(self) -> nn.Embedding:
        return self.tok_emb

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.tok_emb = value

    def _positions(self, attention_mask: torch.Tensor) -> torch.Tensor:
        # positions count real tokens only, so left padding gives the same positions as right
        pos = attention_mask.long().cumsum(-1) - 1
        return pos.clamp(min=0)

    def hidden_states(
        self,
        input_ids: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Token states [B, T, d] and the float mask [B, T] they were computed with."""
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        mask = attention_mask.to(torch.bool)
        x = self.tok_emb(input_ids) + self.pos_emb(self._positions(mask)) + self.seg_emb(token_type_ids)
        x = self.emb_drop(self.emb_ln(x))
        # key mask broadcast over heads and queries; padded queries still attend to real keys
        attn = mask[:, None, None, :]
        for layer in self.layers:
            x = layer(x, attn)
        return x, mask.to(x.dtype)

    def pool(self, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Masked mean (default) or the first real token's state, independent of padding."""
        if self.config.pooling == "cls":
            first = mask.argmax(dim=1)  # index of the first real token (works for left padding)
            return states[torch.arange(states.shape[0], device=states.device), first]
        summed = (states * mask.unsqueeze(-1)).sum(1)
        return summed / mask.sum(1, keepdim=True).clamp(min=1.0)

    def encode(
        self,
        input_ids: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Pooled pair representation [B, d_model]: what the CTR ranker consumes."""
        states, mask = self.hidden_states(input_ids, token_type_ids, attention_mask)
        return self.pool(states, mask)

    def forward(
        self,
        input_ids: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> LightweightEncoderOutput:
        states, mask = self.hidden_states(input_ids, token_type_ids, attention_mask)
        pooled = self.pool(states, mask)
        return LightweightEncoderOutput(
            last_hidden_state=states,
            pooler_output=pooled,
            logits=self.classifier(pooled),
            projection=self.projection(pooled),
        )


def register_auto_classes() -> None:
    """Register with AutoConfig/AutoModel (idempotent) so ``AutoModel.from_pretrained`` works."""
    from transformers import AutoConfig, AutoModel

    try:
        AutoConfig.register(MODEL_TYPE, LightweightEncoderConfig)
    except ValueError:  # already registered
        pass
    try:
        AutoModel.register(LightweightEncoderConfig, LightweightEncoderModel)
    except ValueError:
        pass
