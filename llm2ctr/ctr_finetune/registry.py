"""Ranker model names and what each means; no torch import, so the CLI can list them cheaply."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelSpec:
    """What a registry name means. ``encoder``: none | frozen | finetune | random (random init, fine-tuned)."""

    name: str
    kind: str  # lr | dnn | wide_deep | din | prectr
    encoder: str = "none"
    use_cross: bool = False
    debias: bool = False
    description: str = ""

    @property
    def uses_text(self) -> bool:
        return self.encoder != "none"


REGISTRY: dict[str, ModelSpec] = {
    s.name: s
    for s in [
        ModelSpec("lr", "lr", description="logistic regression on hashed sparse + numeric + lexical"),
        ModelSpec("dnn", "dnn", description="MLP on the same inputs"),
        ModelSpec("wide_deep", "wide_deep", description="Wide&Deep: LR part + MLP"),
        ModelSpec("din", "din", description="DIN: target attention over the user's clicked-item ids"),
        ModelSpec("prectr", "prectr", "frozen", False, False, "PRECTR: frozen encoder, own history only, no debias"),
        ModelSpec("prectr_v2", "prectr", "finetune", True, True, "PRECTR-V2: full model"),
        ModelSpec("v2_no_coldstart", "prectr", "finetune", False, True, "V2 w/o cross-user (cold-start) mining"),
        ModelSpec("v2_no_debias", "prectr", "finetune", True, False, "V2 w/o exposure debias"),
        ModelSpec("v2_random_encoder", "prectr", "random", True, True, "V2 w/o the distilled encoder (random init)"),
        ModelSpec("v2_frozen", "prectr", "frozen", True, True, "V2 with the distilled encoder frozen"),
    ]
}
DEFAULT_SUITE = list(REGISTRY)


def get_spec(name: str) -> ModelSpec:
    if name not in REGISTRY:
        raise KeyError(f"unknown ranker model {name!r}; known: {', '.join(REGISTRY)}")
    return REGISTRY[name]
