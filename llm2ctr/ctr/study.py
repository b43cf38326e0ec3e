"""``llm2ctr ctr study``: the ranker suite over N seeds, scored against labels and ground truth.

One seed's AUC difference between two equally good models is noise (DESIGN.md section 8). The
study trains each chosen model with seeds ``ctr.seed .. ctr.seed + N - 1`` (the first seed's models
are ``ctr/models``, shared with ``ctr train``; the others go to ``ctr/seeds/seed_<s>``), scores
every one on the exposed test set and the all-candidates set, against the click labels and,
where the simulator wrote it, against the true click probability (soft-label AUC: label noise
removed), and settles each claim of the paper (:mod:`llm2ctr.ctr.study_checks`) with a
paired bootstrap interval over requests pooled across seeds, the claim's best achievable gain
from the ground truth, and its positive control. Writes ``ctr/study/study.{json,md,png}``.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from llm2ctr.artifacts import atomic_write_json, write_manifest
from llm2ctr.ctr import artifact as ctr_artifact
from llm2ctr.ctr.intervals import SortedScores, draw_requests, request_weights
from llm2ctr.ctr.jobs import (
    TextContexts,
    check_trainable,
    longest_first,
    resolve_models,
    train_job,
    train_one,
    warm_text_caches,
    with_seed,
)
from llm2ctr.ctr.prepare import Prepared, prepare
from llm2ctr.ctr.registry import get_spec
from llm2ctr.ctr.sanity import best_single_feature
from llm2ctr.ctr.study_checks import gate_gaps, model_table, request_sensitivity, run_checks
from llm2ctr.errors import ConfigError
from llm2ctr.parallel import resolve_workers, run_jobs

log = logging.getLogger(__name__)

SETS = ctr_artifact.EVAL_SETS
# metrics with bootstrap replicates (the ones checks use); the rest are point values per seed
REPLICATED = ("auc", "auc_truth", "auc_cold", "auc_cold_truth", "auc_tail", "auc_tail_truth")
METRICS = ("auc", "gauc", "auc_truth", "gauc_truth", "auc_cold", "auc_cold_truth", "auc_tail", "auc_tail_truth")
# row subsets a metric can be restricted to (suffix of its name before _truth)
SEGMENTS = ("cold", "tail")


@dataclass
class EvalSet:
    """One test set's columns, its cold-start and long-tail rows and the bootstrap's request multiplicities."""

    name: str
    y: np.ndarray
    user: np.ndarray
    request: np.ndarray
    rsl: np.ndarray
    cold: np.ndarray
    tail: np.ndarray  # the row's item is in the bottom popularity quintile (training impressions)
    p_true: np.ndarray
    p_without_type: np.ndarray
    p_without_rsl: np.ndarray
    sens: np.ndarray
    weights: np.ndarray  # [B, n] bootstrap multiplicity of each row's request
    idx: np.ndarray  # [B, R] the request draw behind ``weights``
    _truth_sorted: dict[str, SortedScores] = field(default_factory=dict)
    _segment_weights: dict[str, np.ndarray] = field(default_factory=dict)  # ``weights`` per segment, built once

    @property
    def has_truth(self) -> bool:
        return bool(np.isfinite(self.p_true).all())

    def labels(self, truth: bool) -> tuple[np.ndarray, np.ndarray]:
        """(positive, negative) weight of each row: click labels, or the true click probability."""
        return (self.p_true, 1.0 - self.p_true) if truth else (self.y, 1.0 - self.y)

    def metric(self, scores: SortedScores, name: str, reps: bool) -> tuple[float, np.ndarray | None]:
        """Point value (all rows once) and, if asked, its [B] bootstrap replicates."""
        truth = name.endswith("_truth")
        if truth and not self.has_truth:
            return float("nan"), None
        a, b = self.labels(truth)
        base = name.removesuffix("_truth")
        segment = next((s for s in SEGMENTS if base.endswith(f"_{s}")), None)
        fn = scores.gauc if base.startswith("gauc") else scores.auc
        rows = getattr(self, segment).astype(np.float64) if segment else np.ones(len(self.y))
        point = float(fn(a, b, rows))
        if not reps:
            return point, None
        if segment and segment not in self._segment_weights:
            self._segment_weights[segment] = self.weights * rows
        return point, fn(a, b, self._segment_weights[segment] if segment else self.weights)

    def truth_metric(self, which: str, name: str) -> float:
        """A metric of the truth itself (``p_true``, ``p_without_type``, ``p_without_rsl``)."""
        if not self.has_truth:
            return float("nan")
        key = which
        if key not in self._truth_sorted:
            self._truth_sorted[key] = SortedScores(np.nan_to_num(getattr(self, which)), self.user)
        return self.metric(self._truth_sorted[key], name, reps=False)[0]


def load_eval_set(prepared: Prepared, label: str, cold_max: int, n_boot: int, rng: np.random.Generator) -> EvalSet:
    reader = prepared.reader(SETS[label])
    request = reader.column("request_code").astype(np.int64)
    _, request = np.unique(request, return_inverse=True)
    idx = draw_requests(int(request.max()) + 1 if len(request) else 0, n_boot, rng)
    cols = set(reader.column_names)

    def col(name: str) -> np.ndarray:
        return reader.column(name).astype(np.float64) if name in cols else np.full(reader.num_rows, np.nan)

    return EvalSet(
        name=label, y=reader.column("label").astype(np.float64), user=reader.column("user_code"), request=request,
        rsl=reader.column("rsl"), cold=reader.column("n_hist") < cold_max,
        tail=(col("long_tail") > 0), p_true=col("p_true"),
        p_without_type=col("p_true_without_type"), p_without_rsl=col("p_true_without_rsl"), sens=col("sens_true"),
        weights=request_weights(request, idx).astype(np.float32), idx=idx,
    )


@dataclass
class Scored:
    """Every model x seed: point metrics and bootstrap replicates per eval set."""

    points: dict = field(default_factory=dict)  # (model, set, metric) -> [S]
    reps: dict = field(default_factory=dict)  # (model, set, metric) -> [S, B]
    gate: dict = field(default_factory=dict)  # model -> ([S] rho, [S, B] replicates)


def _predictions(root: Path, model: str, set_name: str) -> np.ndarray:
    return ctr_artifact.load_logits(ctr_artifact.model_dir(root, model), set_name)


def score_models(roots: list[Path], models: list[str], sets: dict[str, EvalSet], gate_idx: np.ndarray | None) -> Scored:
    """Metrics of every (model, seed) on every eval set; replicates for the metrics checks use."""
    from llm2ctr.ctr.intervals import spearman_replicates

    out = Scored()
    cf = sets.get("counterfactual")
    for model in models:
        for label, es in sets.items():
            pts: dict[str, list] = {}
            reps: dict[str, list] = {}
            for root in roots:
                scores = SortedScores(_predictions(root, model, SETS[label]), es.user)
                for name in METRICS:
                    p, r = es.metric(scores, name, reps=name in REPLICATED)
                    pts.setdefault(name, []).append(p)
                    if r is not None:
                        reps.setdefault(name, []).append(r)
            for name, v in pts.items():
                out.points[(model, label, name)] = np.asarray(v)
            for name, v in reps.items():
                out.reps[(model, label, name)] = np.asarray(v)
        if cf is not None and cf.has_truth and gate_idx is not None:
            rhos, rep_rows = [], []
            sens = request_sensitivity(cf)
            for root in roots:
                gap, req = gate_gaps(cf, _predictions(root, model, "cf_test"))
                rhos.append(spearman_replicates(gap, sens[req], np.arange(len(req))[None, :])[0])
                rep_rows.append(spearman_replicates(gap, sens[req], gate_idx))
            out.gate[model] = (np.asarray(rhos), np.asarray(rep_rows))
    return out


def _seed_roots(cfg, seeds: list[int]) -> list[Path]:
    return [ctr_artifact.root(cfg, s) for s in seeds]


def train_seeds(cfg, prepared: Prepared, models: list[str], seeds: list[int], progress: bool = True) -> dict:
    """Train (or skip, when up to date) every model for every seed, ``workers`` at once; wall
    seconds per model and seed."""
    roots = _seed_roots(cfg, seeds)
    jobs = [(cfg, name, seed, root) for seed, root in zip(seeds, roots, strict=True) for name in models]
    if resolve_workers(cfg.workers) > 1:
        for seed in seeds:
            warm_text_caches(with_seed(cfg, seed), prepared, models)
        jobs = longest_first(jobs, lambda job: get_spec(job[1]))
        results = run_jobs(train_job, jobs, [f"seed {seed} {name}" for _, name, seed, _ in jobs], cfg.workers, "study")
    else:
        contexts = {seed: TextContexts(with_seed(cfg, seed), prepared) for seed in seeds}
        results = []
        for _, name, seed, root in jobs:
            t0 = time.perf_counter()
            log.info("study: seed %d, %s", seed, name)
            summary = train_one(with_seed(cfg, seed), prepared, get_spec(name), contexts[seed], progress, root)
            results.append({**summary, "wall_seconds": round(time.perf_counter() - t0, 2)})
    timings: dict[str, dict[int, float]] = {}
    for (_, name, seed, _), summary in zip(jobs, results, strict=True):
        timings.setdefault(name, {})[seed] = round(summary["wall_seconds"], 2)
    return {name: [by_seed[s] for s in seeds] for name, by_seed in timings.items()}


def run_study(cfg, models: list[str] | None = None, n_seeds: int | None = None, progress: bool = True) -> dict:
    """Train the study's models over the seeds, score them, settle the checks, write the study."""
    from llm2ctr.ctr.study_report import write_study

    t0 = time.perf_counter()
    names = resolve_models(cfg, models or cfg.ctr.study_models or None)
    n = int(n_seeds or cfg.ctr.study_seeds)
    if n < 1:
        raise ConfigError(f"ctr.study_seeds={n}: expected >= 1")
    seeds = [cfg.ctr.seed + k for k in range(n)]
    prepared = prepare(cfg)
    left_out = {}
    for name in list(names):  # a real log has no truth: the positive controls cannot run there
        try:
            check_trainable(prepared, get_spec(name))
        except ValueError as exc:
            left_out[name] = str(exc)
            names.remove(name)
            log.warning("study: %s left out: %s", name, exc)
    timings = train_seeds(cfg, prepared, names, seeds, progress)
    train_s = time.perf_counter() - t0
    rng = np.random.default_rng([int(cfg.ctr.seed), 2602])
    sets = {label: load_eval_set(prepared, label, cfg.ctr.cold_start_max_hist, cfg.ctr.study_bootstrap, rng)
            for label, f in SETS.items() if prepared.has(f)}
    gate_idx = None
    cf = sets.get("counterfactual")
    if cf is not None and cf.has_truth:
        n_gate = len(gate_gaps(cf, np.zeros(len(cf.y)))[1])
        gate_idx = rng.integers(0, n_gate, size=(cfg.ctr.study_bootstrap, n_gate)) if n_gate else None
    roots = _seed_roots(cfg, seeds)
    scored = score_models(roots, names, sets, gate_idx)
    floor = best_single_feature(prepared.reader("valid"), prepared.spec, prepared.pairs)
    table = model_table(scored, names, roots, floor, prepared.reader("valid").column("label"))
    checks, skipped_checks = run_checks(scored, sets, names, rng)
    result = {
        "seeds": seeds, "models": table, "checks": checks, "skipped_checks": skipped_checks,
        "n_boot": cfg.ctr.study_bootstrap,
        "best_single_feature": {"name": floor[0], "valid_auc": floor[1]},
        "truth": {label: es.has_truth for label, es in sets.items()},
        "counts": {label: {"rows": len(es.y), "requests": int(es.idx.shape[1])} for label, es in sets.items()},
        "train_seconds": round(train_s, 1), "seconds": round(time.perf_counter() - t0, 1),
        "train_wall_seconds": timings, "left_out": left_out,
    }
    result["warnings"] = [f"{m}: validation AUC {row['valid_auc_mean']:.4f} is not above the best single feature "
                          f"({floor[0]}, {floor[1]:.4f}); it has not learned" for m, row in table.items()
                          if row.get("beats_best_feature") is False]
    for w in result["warnings"]:
        log.warning("study: %s", w)
    out = ctr_artifact.study_dir(cfg)
    out.mkdir(parents=True, exist_ok=True)
    written = write_study(result, out)  # study.md + study.png, each written atomically
    atomic_write_json(out / "study.json", result)
    write_manifest(out, kind="report", stage=ctr_artifact.STAGE, config=dataclasses.asdict(cfg.ctr),
                   inputs={"features": prepared.directory}, counts={"models": len(names), "seeds": n}, role="study")
    return {"study": str(out), "files": [str(out / "study.json"), *written], "seconds": result["seconds"],
            "checks": {c["name"]: c["verdict"] for c in checks}, "warnings": result["warnings"]}
