"""Temperature scaling recovers a known temperature; reliability bins are exact."""

from __future__ import annotations

import math

import numpy as np
import pytest

from llm2ctr.ctr.calibration import (
    apply_temperature,
    calibration_curve,
    expected_calibration_error,
    fit_temperature,
    prob_to_logit,
)
from llm2ctr.ctr.metrics import auc, logloss


def _calibrated(seed: int = 0, n: int = 40_000):
    """True logits z and clicks y ~ Bernoulli(sigmoid(z)): sigmoid(z) is calibrated by construction."""
    rng = np.random.default_rng(seed)
    z = rng.normal(-2.5, 1.5, n)
    y = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(np.int8)
    return z, y


@pytest.mark.parametrize("true_t", [0.4, 1.0, 3.0])
def test_fit_temperature_recovers_known_temperature(true_t):
    z, y = _calibrated()
    t = fit_temperature(z * true_t, y)  # over-/under-confident logits
    assert t == pytest.approx(true_t, rel=0.05)
    scaled = apply_temperature(z * true_t, t)
    assert logloss(y, scaled) <= logloss(y, apply_temperature(z * true_t, 1.0)) + 1e-12
    assert auc(y, scaled) == pytest.approx(auc(y, z), abs=1e-12)  # ranking unchanged


def test_fit_temperature_edge_cases():
    with pytest.raises(ValueError, match="both clicks and non-clicks"):
        fit_temperature([0.1, 0.2], [1, 1])
    with pytest.raises(ValueError, match="length mismatch"):
        fit_temperature([0.1, 0.2], [1, 0, 1])
    assert fit_temperature(np.zeros(4), [0, 1, 0, 1]) == 1.0
    with pytest.raises(ValueError, match="temperature must be"):
        apply_temperature([0.0], 0.0)


def test_prob_to_logit_round_trips():
    p = np.array([0.01, 0.2, 0.5, 0.93])
    assert np.allclose(apply_temperature(prob_to_logit(p), 1.0), p)
    assert np.isfinite(prob_to_logit(np.array([0.0, 1.0]))).all()


def test_calibration_curve_bins_by_hand():
    y = np.array([0, 1, 0, 0, 1, 1, 1, 0])
    p = np.array([0.05, 0.15, 0.55, 0.45, 0.95, 1.0, 0.85, 0.0])
    c = calibration_curve(y, p, n_bins=2)
    assert c["edges"].tolist() == [0.0, 0.5, 1.0]
    assert c["count"].tolist() == [4, 4]  # p == 1.0 falls in the last bin
    assert np.allclose(c["mean_p"], [(0.05 + 0.15 + 0.45 + 0.0) / 4, (0.55 + 0.95 + 1.0 + 0.85) / 4])
    assert np.allclose(c["mean_y"], [0.25, 0.75])
    gap = abs(c["mean_p"][0] - 0.25) * 4 + abs(c["mean_p"][1] - 0.75) * 4
    assert c["ece"] == pytest.approx(gap / 8)
    empty = calibration_curve(y, p, n_bins=4)
    assert empty["count"].sum() == len(y)
    with pytest.raises(ValueError, match="strategy"):
        calibration_curve(y, p, strategy="nope")


def test_quantile_bins_and_ece_separate_calibrated_from_miscalibrated():
    z, y = _calibrated(seed=1)
    c = calibration_curve(y, apply_temperature(z, 1.0), n_bins=10, strategy="quantile")
    assert c["count"].sum() == len(y) and c["count"].min() > 0.09 * len(y)
    good = expected_calibration_error(y, apply_temperature(z, 1.0))
    bad = expected_calibration_error(y, apply_temperature(z + 1.0, 1.0))  # over-predicts
    assert good < 0.01 < bad
    assert not math.isnan(good)
