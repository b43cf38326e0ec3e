"""Ranker model names and what each means; no torch import, so the CLI can list them cheaply."""

from __future__ import annotations

from dataclasses import dataclass

from llm2ctr.errors import ConfigError


@dataclass(frozen=True)
class ModelSpec:
    """What a registry name means.

    ``encoder``: none | frozen | finetune | random (random init, fine-tuned). ``lexical``: the
    query-item match features as inputs (off in the ablations that show what the encoder adds).
    ``oracle``: the simulator's true relevance sensitivity as an input (a positive control, never
    a production model). ``train_set``: the feature file trained on; ``train_exploration`` adds
    the simulator's uniformly random slates (the positive control of exposure debias).
    ``role``: model | ablation | control (controls are only meaningful on simulated data).
    ``debias_method``: which debias a ``debias`` model uses ("" = ``ctr.debias``; prectr | hccp).
    ``long_history``: the user's history read by the long-history tower instead of the last
    ``data.history.max_user_history`` behaviours.
    """

    name: str
    kind: str  # lr | dnn | wide_deep | din | prectr
    encoder: str = "none"
    use_cross: bool = False
    debias: bool = False
    description: str = ""
    lexical: bool = True
    oracle: bool = False
    train_set: str = "train"
    role: str = "model"
    debias_method: str = ""
    long_history: bool = False

    @property
    def uses_text(self) -> bool:
        return self.encoder != "none"

    @property
    def needs_truth(self) -> bool:
        """True when the model reads simulator ground truth (oracle input or exploration slates)."""
        return self.oracle or self.train_set != "train"


def _ablation(name: str, description: str, **kw) -> ModelSpec:
    return ModelSpec(name, "prectr", kw.pop("encoder", "finetune"), kw.pop("use_cross", True),
                     kw.pop("debias", True), description, role="ablation", **kw)


REGISTRY: dict[str, ModelSpec] = {
    s.name: s
    for s in [
        ModelSpec("lr", "lr", description="logistic regression on hashed sparse + numeric + lexical"),
        ModelSpec("dnn", "dnn", description="MLP on the same inputs"),
        ModelSpec("wide_deep", "wide_deep", description="Wide&Deep: LR part + MLP"),
        ModelSpec("din", "din", description="DIN: target attention over the user's behaviour item ids"),
        ModelSpec("prectr", "prectr", "frozen", False, False, "PRECTR: frozen encoder, own history only, no debias"),
        ModelSpec("prectr_v2", "prectr", "finetune", True, True, "PRECTR-V2: full model"),
        ModelSpec("qin", "qin", "frozen", description="QIN: top-k sparse target attention over the history, "
                  "quadratic interactions"),
        ModelSpec("prectr_v2_hccp", "prectr", "finetune", True, True, "PRECTR-V2 with HCCP's debias: hybrid "
                  "samples (unexposed + lower-relevance items) and Margin InfoNCE", debias_method="hccp"),
        ModelSpec("prectr_v2_longhist", "prectr", "finetune", True, True, "PRECTR-V2 with the long-history "
                  "user tower (K learned queries over the whole history)", long_history=True),
        _ablation("v2_no_coldstart", "V2 w/o cross-user (cold-start) mining", use_cross=False),
        _ablation("v2_no_debias", "V2 w/o exposure debias", debias=False),
        _ablation("v2_random_encoder", "V2 w/o the distilled encoder (random init)", encoder="random"),
        _ablation("v2_frozen", "V2 with the distilled encoder frozen", encoder="frozen"),
        _ablation("v2_frozen_no_coldstart", "V2 w/o cross-user mining, encoder frozen", encoder="frozen",
                  use_cross=False),
        _ablation("v2_frozen_no_debias", "V2 w/o exposure debias, encoder frozen", encoder="frozen", debias=False),
        _ablation("v2_no_lexical", "V2 w/o lexical match features (the encoder alone reads the text)", lexical=False),
        _ablation("v2_frozen_no_lexical", "V2 w/o lexical features, encoder frozen", encoder="frozen", lexical=False),
        _ablation("v2_frozen_hccp", "V2 with HCCP's debias instead of synthetic negatives, encoder frozen",
                  encoder="frozen", debias_method="hccp"),
        _ablation("v2_frozen_longhist", "V2 with the long-history user tower, encoder frozen", encoder="frozen",
                  long_history=True),
        ModelSpec("dnn_no_lexical", "dnn", description="DNN w/o lexical features (no text signal at all)",
                  lexical=False, role="ablation"),
        ModelSpec("dnn_oracle_sensitivity", "dnn", description="control: DNN given the true relevance sensitivity",
                  oracle=True, role="control"),
        ModelSpec("dnn_exploration", "dnn", description="control: DNN also trained on 5% uniformly random slates",
                  train_set="train_exploration", role="control"),
    ]
}
# what `ctr train` trains by default: the baselines, PRECTR, PRECTR-V2 and the ablations with the
# encoder frozen (a fine-tuned ablation costs ~5x; v2_no_coldstart, v2_no_debias, v2_no_lexical and
# v2_random_encoder train by name). Controls need the simulator's truth: `ctr study` trains them.
DEFAULT_SUITE = ["lr", "dnn", "wide_deep", "din", "prectr", "prectr_v2", "v2_frozen", "v2_frozen_no_coldstart",
                 "v2_frozen_no_debias", "v2_frozen_no_lexical", "dnn_no_lexical"]


DEBIAS_METHODS = ("prectr", "hccp", "none")


def debias_method(spec: ModelSpec, configured: str) -> str:
    """The debias a model trains with: none for a model without debias or with ``ctr.debias=none``."""
    if configured not in DEBIAS_METHODS:
        raise ConfigError(f"ctr.debias={configured!r}: expected one of {', '.join(DEBIAS_METHODS)}")
    if not spec.debias or configured == "none":
        return "none"
    return spec.debias_method or configured


def get_spec(name: str) -> ModelSpec:
    if name not in REGISTRY:
        raise KeyError(f"unknown ranker model {name!r}; known: {', '.join(REGISTRY)}")
    return REGISTRY[name]
