"""Is a trained ranker better than the best single input? The floor every model must clear.

A model that does not beat one of its own inputs on validation has not learned (too few steps, a
learning rate that cannot move it, a bug), whatever its report says. Each candidate feature is
scored on its own, sign-agnostic (max(AUC, 1 - AUC)): position, every numeric column, the log
history length and every lexical match feature of the pair.
"""

from __future__ import annotations

import numpy as np

from llm2ctr.ctr.features import FeatureReader, FeatureSpec, PairFeatures
from llm2ctr.ctr.metrics import auc
from llm2ctr.data.lexical import LEXICAL_NAMES


def single_feature_aucs(reader: FeatureReader, spec: FeatureSpec, pairs: PairFeatures) -> dict[str, float]:
    """Sign-agnostic AUC of each single input feature against the labels of ``reader``."""
    y = reader.column("label")
    if len(y) == 0 or y.min() == y.max():
        return {}
    columns: dict[str, np.ndarray] = {}
    if "position_raw" in reader.column_names:
        columns["position"] = reader.column("position_raw").astype(np.float64)
    numeric = reader.column("numeric")
    for j, name in enumerate([*spec.numeric_fields, "log_n_hist"]):
        columns[name] = numeric[:, j].astype(np.float64)
    lexical = pairs.lexical[reader.column("pair_idx")]
    for j, name in enumerate(LEXICAL_NAMES[: lexical.shape[1]]):
        columns[f"lexical:{name}"] = lexical[:, j].astype(np.float64)
    out = {}
    for name, values in columns.items():
        a = auc(y, np.nan_to_num(values))
        out[name] = float(max(a, 1.0 - a))
    return out


def best_single_feature(reader: FeatureReader, spec: FeatureSpec, pairs: PairFeatures) -> tuple[str, float]:
    """(name, AUC) of the strongest single input; ("", nan) when the labels have one class."""
    aucs = single_feature_aucs(reader, spec, pairs)
    if not aucs:
        return "", float("nan")
    name = max(aucs, key=aucs.get)
    return name, aucs[name]
