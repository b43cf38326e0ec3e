"""Student stage entry points (the CLI verbs and ``llm2ctr pipeline run`` call these).

Paths under ``cfg.workdir``: data/pairs -> student/tokenizer; data/pairs (+ data/catalogue) ->
student/distill_pairs; pairs + distill pairs + teacher stores -> student/model (variant sft+mse)
or student/variants/<sft|mse>; all of them -> student/eval; student/model -> student/export.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch

from llm2ctr.artifacts import (
    ArtifactError,
    atomic_dir,
    atomic_write_json,
    atomic_write_text,
    read_manifest,
    write_manifest,
)
from llm2ctr.config import Config
from llm2ctr.data.store import load_pairs, load_table, save_table
from llm2ctr.errors import ConfigError
from llm2ctr.parallel import torch_threads
from llm2ctr.student.artifact import (
    EVAL_KIND,
    eval_dir,
    export_dir,
    load_student,
    model_dir,
    tokenizer_dir,
    write_student,
)
from llm2ctr.student.config import StudentConfig
from llm2ctr.student.data import PairArrays, concat, load_teacher_stores, tokenize_table
from llm2ctr.student.losses import VARIANTS, variant_terms

log = logging.getLogger(__name__)
STAGE = "student"


def teacher_dirs(cfg: Config) -> list[Path]:
    """Configured stores, or the default store plus the distillation-pairs store when present."""
    if cfg.student.teacher_dirs:
        return [Path(d) for d in cfg.student.teacher_dirs]
    from llm2ctr.teacher.artifact import distill_embeddings_dir, embeddings_dir

    dirs = [embeddings_dir(cfg)]
    extra = distill_embeddings_dir(cfg)
    if (extra / "manifest.json").is_file():
        dirs.append(extra)
    return dirs


def load_tokenizer(path: str | Path):
    from transformers import AutoTokenizer

    read_manifest(path)
    return AutoTokenizer.from_pretrained(str(path))


def run_tokenizer(cfg: Config) -> dict[str, Any]:
    """Train the domain WordPiece on queries and item texts of data/pairs."""
    from llm2ctr.student.tokenization import train_tokenizer

    pairs_dir = cfg.stage_dir("data", "pairs")
    pairs = load_pairs(pairs_dir)
    texts = sorted(set(pairs.column("query").to_pylist()) | set(pairs.column("item_text").to_pylist()))
    out = tokenizer_dir(cfg)
    with atomic_dir(out) as tmp:
        tok = train_tokenizer(texts, cfg.student.vocab_size, tmp)
        write_manifest(tmp, kind="student_tokenizer", stage=STAGE, config=cfg.student,
                       inputs={"pairs": pairs_dir}, counts={"texts": len(texts), "vocab": len(tok)})
    return {"path": str(out), "texts": len(texts), "vocab_size": len(tok)}


def run_distill_pairs(cfg: Config) -> dict[str, Any]:
    """Build unlabelled distillation pairs (embed them with ``llm2ctr teacher embed``)."""
    from llm2ctr.student.distill_pairs import build_distill_pairs, catalogue_from_pairs, new_queries

    pairs_dir = cfg.stage_dir("data", "pairs")
    pairs = load_pairs(pairs_dir)
    inputs: dict[str, Path] = {"pairs": pairs_dir}
    cat_dir = cfg.stage_dir("data", "catalogue")
    if (cat_dir / "manifest.json").is_file():
        catalogue = load_table(cat_dir, "catalogue")
        if "item_text" not in catalogue.column_names and "title" in catalogue.column_names:
            catalogue = catalogue.append_column("item_text", catalogue.column("title"))
        missing = [c for c in ("item_id", "item_text") if c not in catalogue.column_names]
        if missing:
            raise ArtifactError(f"{cat_dir}: catalogue lacks column(s) {missing} (item_text or title expected); "
                                f"has {catalogue.column_names}")
        ids = catalogue.column("item_id").to_numpy(zero_copy_only=False)
        _, first = np.unique(ids, return_index=True)
        catalogue = catalogue.take(pa.array(np.sort(first)))
        inputs["catalogue"] = cat_dir
    else:
        catalogue = catalogue_from_pairs(pairs)
    extra = new_queries(pairs_dir, cfg.student.pairs_new_queries, events_dir=cfg.stage_dir("data", "events"),
                        seed=cfg.seed)
    inputs.update(extra.inputs)
    table, counts = build_distill_pairs(pairs, catalogue, cfg.student.pairs_near_k, cfg.student.pairs_random_k,
                                        cfg.seed, new_queries=extra.queries)
    counts.update({f"new_queries_{k}": v for k, v in extra.counts.items()})
    out = cfg.stage_dir("student", "distill_pairs")
    save_table(table, out, kind="pairs", stage=STAGE, config=cfg.student, inputs=inputs, counts=counts)
    log.info("distillation pairs: %s -> %s", counts, out)
    return {"path": str(out), **counts}


def _teacher_info(dirs: list[Path]) -> str:
    try:
        m = read_manifest(dirs[0])
    except ArtifactError:
        return "unknown"
    for key in ("model_id", "model", "teacher_model"):
        if m.get(key):
            return f"{m[key]} (dim {m.get('dim')})"
    cfgm = m.get("config") or {}
    for key in ("model_id", "model", "model_name_or_path"):
        if isinstance(cfgm, dict) and cfgm.get(key):
            return f"{cfgm[key]} (dim {m.get('dim')})"
    return f"store {dirs[0]} (dim {m.get('dim')})"


def load_training_data(cfg: Config, tokenizer) -> tuple[PairArrays, dict[str, int], int]:
    """All pairs (+ distillation pairs) tokenized and joined with teacher vectors; counts; teacher dim."""
    sc = cfg.student
    pairs_dir = cfg.stage_dir("data", "pairs")
    dirs = [d for d in teacher_dirs(cfg) if (d / "manifest.json").is_file() or cfg.student.teacher_dirs]
    keys, vecs = load_teacher_stores(dirs) if dirs else ([], np.zeros((0, 0), np.float32))
    parts = [tokenize_table(tokenizer, load_pairs(pairs_dir), sc.max_length, keys, vecs, str(pairs_dir))]
    counts = {"pairs": len(parts[0]), "pairs_labelled": int((parts[0].labels >= 0).sum()),
              "pairs_without_teacher": int((~parts[0].has_teacher).sum())}
    dp_dir = cfg.stage_dir("student", "distill_pairs")
    if sc.use_distill_pairs and (dp_dir / "manifest.json").is_file():
        dp = load_pairs(dp_dir)
        is_train = np.asarray(pc.equal(dp.column("split"), "train").to_numpy(zero_copy_only=False), dtype=bool)
        if sc.max_distill_pairs and is_train.sum() > sc.max_distill_pairs:
            # the cap counts training rows (what the student learns from); held-out queries' rows stay
            train_rows = np.flatnonzero(is_train)
            pick = np.random.default_rng(0).choice(train_rows, sc.max_distill_pairs, replace=False)
            dp = dp.take(pa.array(np.sort(np.concatenate([pick, np.flatnonzero(~is_train)]))))
        d = tokenize_table(tokenizer, dp, sc.max_length, keys, vecs, str(dp_dir))
        counts.update(distill_pairs=len(d), distill_pairs_without_teacher=int((~d.has_teacher).sum()))
        parts.append(d)
    data = concat(parts)
    if counts["pairs_without_teacher"] or counts.get("distill_pairs_without_teacher"):
        log.warning("pairs without a teacher embedding (they get no distillation term): %s; stores: %s",
                    {k: v for k, v in counts.items() if "without" in k}, [str(d) for d in dirs])
    return data, counts, int(vecs.shape[1]) if len(keys) else 0


def _rows_for_variant(data: PairArrays, variant: str) -> np.ndarray:
    """Rows that feed the variant's loss: labelled for sft, with a teacher vector for kd and mse."""
    terms = variant_terms(variant)
    use = np.zeros(len(data), dtype=bool)
    if "sft" in terms:
        use |= data.labels >= 0
    if terms & {"kd", "mse"}:
        use |= data.has_teacher
    return use


def attach_soft_labels(data: PairArrays, sc: StudentConfig) -> dict[str, Any]:
    """Fit the teacher head on labelled train rows; write its tempered probabilities into ``data.soft``."""
    from llm2ctr.student.decision import macro_f1
    from llm2ctr.student.teacher_head import fit_teacher_head

    fit_rows = (data.labels >= 0) & data.has_teacher & (data.splits == "train")
    if not fit_rows.any():
        raise ArtifactError("the kd term needs labelled training pairs with teacher vectors to fit the teacher head")
    head = fit_teacher_head(data.teacher[fit_rows], data.labels[fit_rows], balanced=sc.class_weight == "balanced",
                            max_rows=sc.kd_head_rows, seed=sc.seed)
    has = data.has_teacher
    data.soft[has] = head.probabilities(data.teacher[has], sc.kd_temperature)
    info: dict[str, Any] = {"fitted_on": int(min(fit_rows.sum(), sc.kd_head_rows)), "temperature": sc.kd_temperature}
    valid = (data.labels >= 0) & has & (data.splits == "valid")
    if valid.any():
        info["valid_macro_f1"] = round(macro_f1(data.labels[valid], head.predict(data.teacher[valid])), 4)
    return info


def apply_decision_rule(model, valid: PairArrays, sc: StudentConfig) -> dict[str, Any]:
    """Tune per-class offsets on validation macro-F1 and add them to the classifier bias; warn on collapse."""
    from llm2ctr.student.decision import head_collapse, macro_f1, tune_class_offsets
    from llm2ctr.student.evaluation import student_outputs

    lab = valid.labels >= 0
    info: dict[str, Any] = {"rule": "argmax", "valid_rows": int(lab.sum())}
    if not lab.any():
        return info
    logits = student_outputs(model, valid.subset(lab))["logits"]
    y = valid.labels[lab]
    info["valid_macro_f1_argmax"] = round(macro_f1(y, logits.argmax(1)), 4)
    if sc.decision_rule == "tuned":
        offsets, before, after = tune_class_offsets(logits, y)
        if after > before:
            with torch.no_grad():
                model.relevance.classifier.bias += torch.from_numpy(offsets).to(model.relevance.classifier.bias)
            logits = logits + offsets
            info.update(rule="tuned", offsets=[round(float(o), 4) for o in offsets])
        info["valid_macro_f1"] = round(after, 4)
    elif sc.decision_rule != "argmax":
        raise ConfigError(f"student.decision_rule={sc.decision_rule!r}: expected 'tuned' or 'argmax'")
    collapsed = head_collapse(logits.argmax(1), y)
    if collapsed:
        log.warning("the relevance head predicts level %d for %.0f%% of validation pairs (true share %.0f%%): it "
                    "collapsed to one class; try more epochs, student.class_weight=balanced or more labelled pairs",
                    collapsed["class"] + 1, 100 * collapsed["predicted_share"], 100 * collapsed["true_share"])
        info["collapsed"] = collapsed
    return info


def run_train(cfg: Config, variant: str | None = None, out_dir: str | Path | None = None,
              max_steps: int | None = None, seed: int | None = None) -> dict[str, Any]:
    """Train one student variant (default ``student.variant``) and save it as a HF folder (+ card, manifest)."""
    from llm2ctr.student.card import model_card
    from llm2ctr.student.modeling import Student, student_config
    from llm2ctr.student.trainer import StudentTrainer, evaluate_loss

    variant = variant or cfg.student.variant
    terms = variant_terms(variant)
    sc = cfg.student if seed is None else dataclasses.replace(cfg.student, seed=seed)
    tok_dir = tokenizer_dir(cfg)
    tokenizer = load_tokenizer(tok_dir)
    data, counts, tdim = load_training_data(cfg, tokenizer)
    if terms & {"kd", "mse"} and not tdim:
        raise ArtifactError(f"variant {variant} needs teacher embeddings; none found in {teacher_dirs(cfg)}")
    kd_info = attach_soft_labels(data, sc) if "kd" in terms else None
    use = _rows_for_variant(data, variant)
    counts["rows_unused_by_variant"] = int((~use).sum())
    train = data.subset(use & (data.splits == "train"))
    valid = data.subset(use & (data.splits == "valid"))
    counts.update(train_rows=len(train), valid_rows=len(valid))
    if not len(train):
        raise ArtifactError(f"{cfg.stage_dir('data', 'pairs')}: no training rows for variant {variant} (counts {counts})")
    torch.manual_seed(sc.seed)
    mcfg = student_config(
        vocab_size=len(tokenizer), d_model=sc.d_model, num_layers=sc.num_layers, num_heads=sc.num_heads,
        ffn_dim=sc.ffn_dim, max_length=sc.max_length, dropout=sc.dropout, pad_token_id=tokenizer.pad_token_id,
    )
    model = Student.from_config(mcfg, teacher_dim=tdim or 384, pooling=sc.pooling)
    run_dir = cfg.stage_dir("student", "runs", variant.replace("+", "_"), f"seed-{sc.seed}")
    trainer = StudentTrainer(model, train, valid, sc, variant, run_dir)
    with torch_threads(sc.num_threads):  # later stages in this process keep their own count
        summary = trainer.train(max_steps=max_steps)
    summary["threads"] = sc.num_threads or torch.get_num_threads()
    model = trainer.raw_model
    if len(valid):
        summary["valid_metrics"] = evaluate_loss(trainer.eval_loss_fn, valid, sc.batch_size * 2, trainer.acc.device)
    if terms & {"sft", "kd"}:
        summary["decision_rule"] = apply_decision_rule(model, valid, sc)
    out = Path(out_dir) if out_dir else model_dir(cfg, variant, sc.seed)
    dirs = teacher_dirs(cfg)
    summary.update(counts=counts, n_params=sum(p.numel() for p in model.parameters()), seed=sc.seed,
                   model_config=mcfg.to_dict(), mse_weight=sc.mse_weight, distill_loss=sc.distill_loss,
                   kd=kd_info, class_weight=sc.class_weight, pooling=sc.pooling, teacher=_teacher_info(dirs), path=str(out))
    if not trainer.acc.is_main_process:
        return summary
    inputs = {"pairs": cfg.stage_dir("data", "pairs"), "tokenizer": tok_dir}
    inputs.update({f"teacher_{i}": d for i, d in enumerate(dirs) if (d / "manifest.json").is_file()})
    with atomic_dir(out) as tmp:
        write_student(model, tokenizer, tmp, sc.max_length)
        atomic_write_text(tmp / "README.md", model_card(summary))
        atomic_write_json(tmp / "training_summary.json", summary)
        write_manifest(tmp, kind="student", stage=STAGE, config=sc, inputs=inputs, counts=counts,
                       variant=variant, seed=sc.seed, teacher_dim=tdim, n_params=summary["n_params"])
    return summary


def plain_teacher_dir(cfg: Config) -> Path:
    """Teacher embeddings of the bare pairs (no retrieved examples): the ceiling a student can reach."""
    from llm2ctr.teacher.artifact import plain_embeddings_dir

    return plain_embeddings_dir(cfg)


def run_eval(cfg: Config) -> dict[str, Any]:
    """The distillation table on the labelled test split: lexical baselines, teacher probes, students
    (every variant and seed found), per split all / seen / unseen; writes student/eval. Serial, on
    all threads: in ``workers`` processes the rows took longer (85 s vs 60 s on the quickstart; every
    worker re-tokenized the pairs)."""
    from llm2ctr.student.baselines import lexical_lr, tfidf_lr
    from llm2ctr.student.data import join_teacher
    from llm2ctr.student.evaluation import (
        HeldOut,
        aggregate,
        evaluate_student,
        plot_rows,
        table_markdown,
        targets,
    )

    sc = cfg.student
    seeds = [sc.seed + k for k in range(max(1, sc.eval_seeds))]
    found = [(v, s, model_dir(cfg, v, s)) for v in VARIANTS for s in seeds
             if (model_dir(cfg, v, s) / "manifest.json").is_file()]
    if not found:
        raise ArtifactError(f"{cfg.stage_dir('student')}: no trained student (run `llm2ctr student train`)")
    _, tokenizer = load_student(found[0][2])
    data, counts, _ = load_training_data(cfg, tokenizer)
    held = HeldOut(data, sc.decision_rule, sc.kd_head_rows, sc.class_weight == "balanced")
    if not len(held.test) or not len(held.train):
        raise ArtifactError(f"{cfg.stage_dir('data', 'pairs')}: the table needs labelled train and test pairs "
                            f"(train {len(held.train)}, test {len(held.test)})")
    balanced = sc.class_weight == "balanced"

    def texts(d: PairArrays) -> tuple[list[str], list[str]]:
        return d.queries.tolist(), d.items.tolist()

    runs: list[dict[str, Any]] = []
    for name, fit in (("TF-IDF + LR", tfidf_lr), ("BM25/overlap + LR", lexical_lr)):
        log.info("baseline %s", name)
        v_logits, t_logits = fit(texts(held.train), held.train.labels, texts(held.valid), held.valid.labels,
                                 texts(held.test), balanced=balanced, seed=sc.seed)
        runs.append({"model": name, "metrics": held.score(v_logits, t_logits)})
    notes = []
    parts = (held.train, held.valid, held.test)
    if all(p.has_teacher.all() for p in parts):
        runs.append({"model": "teacher probe (RAG prompt)", "metrics": held.probe(lambda d: d.teacher, sc.seed)})
    else:
        notes.append("teacher probe (RAG prompt) left out: some labelled pairs have no teacher vector")
    plain = plain_teacher_dir(cfg)
    if (plain / "manifest.json").is_file():
        keys, vecs = load_teacher_stores([plain])
        joined = {id(p): join_teacher(p.pair_ids.tolist(), keys, vecs) for p in parts}
        if all(has.all() for _, has in joined.values()):
            runs.append({"model": "teacher probe (plain pair)",
                         "metrics": held.probe(lambda d: joined[id(d)][0], sc.seed)})
        else:
            notes.append(f"teacher probe (plain pair) left out: {plain} lacks some labelled pairs")
    else:
        notes.append(f"teacher probe (plain pair) left out: no {plain} (pipeline stage teacher_plain)")
    for variant, seed, path in found:
        log.info("student %s seed %d", variant, seed)
        model, _ = load_student(path)
        runs.append(evaluate_student(model, held, variant, seed, data))
    rows = aggregate(runs)
    verdict = targets(rows, sc.variant)
    table = table_markdown(rows, verdict) + "".join(f"\n{n}.\n" for n in notes)
    out = eval_dir(cfg)
    headline = verdict["split"]
    report = {"split": "test", "headline_split": headline, "counts": {**counts, "test_rows": len(held.test)},
              "rows": rows, "targets": verdict, "notes": notes, "runs": runs}
    inputs = {f"student_{v.replace('+', '_')}_seed{s}": p for v, s, p in found}
    with atomic_dir(out) as tmp:
        atomic_write_json(tmp / "eval.json", report)
        atomic_write_text(tmp / "eval.md", "# Student evaluation (held-out test split)\n\n"
                          "![distillation](distillation.png)\n\n" + table)
        plot_rows(rows, headline, tmp / "distillation.png")
        write_manifest(tmp, kind=EVAL_KIND, stage=STAGE, config=cfg.student, inputs=inputs,
                       counts={"test_rows": len(held.test), "variants": len({v for v, _, _ in found}),
                               "students": len(found)})
    return {"path": str(out), "table": table, "rows": rows, "targets": verdict}


def run_export(cfg: Config, source_dir: str | Path | None = None) -> dict[str, Any]:
    """The student folder + ONNX fp32 (parity-checked) + ONNX int8, with int8's macro-F1 cost.

    The export folder is what ``student push`` uploads: the stock layout of student/artifact.py
    plus ``onnx/``. Quality is measured on the labelled test pairs (all pairs if there is no test
    split): head macro-F1 from PyTorch, ONNX fp32 and ONNX int8 on the same tokens.
    """
    import shutil

    from llm2ctr.student.data import labels_from_rsl
    from llm2ctr.student.evaluation import classification_metrics
    from llm2ctr.student.export import export_onnx, onnx_session, parity, quantize_int8, run_onnx
    from llm2ctr.student.tokenization import encode_pairs

    src = Path(source_dir) if source_dir else model_dir(cfg)
    model, tokenizer = load_student(src)
    pairs_dir = cfg.stage_dir("data", "pairs")
    pairs = load_pairs(pairs_dir)
    test = pairs.filter(pc.equal(pairs.column("split"), "test"))
    test = test if test.num_rows else pairs
    labels = labels_from_rsl(test.column("rsl"), str(pairs_dir))
    test = test.filter(pa.array(labels >= 0))
    labels = labels[labels >= 0]
    batch = encode_pairs(tokenizer, test.column("query").to_pylist(), test.column("item_text").to_pylist(),
                         cfg.student.max_length)
    sample = {k: v[:256] for k, v in batch.items()}
    out = export_dir(cfg)
    res: dict[str, Any] = {"path": str(out), "parity_rows": int(sample["input_ids"].shape[0]),
                           "quality_rows": int(len(labels))}

    def macro_f1(logits: np.ndarray) -> float:
        return round(classification_metrics(labels, logits.argmax(1))["macro_f1"], 4)

    with torch.no_grad():
        res["macro_f1"] = {"pytorch": macro_f1(model(**batch).logits.numpy())}
    with atomic_dir(out) as tmp:
        shutil.copytree(src, tmp, dirs_exist_ok=True)
        (tmp / "onnx").mkdir()
        onnx_path = export_onnx(model, sample, tmp / "onnx" / "model.onnx", cfg.student.onnx_opset)
        res["onnx_parity"] = parity(model, onnx_session(onnx_path), sample)
        if res["onnx_parity"]["max_abs_diff_pooled"] > 1e-3:
            raise ArtifactError(f"{onnx_path}: ONNX differs from PyTorch ({res['onnx_parity']}); not exported")
        res["macro_f1"]["onnx_fp32"] = macro_f1(run_onnx(onnx_session(onnx_path), batch)["logits"])
        if cfg.student.onnx_int8:
            q = quantize_int8(onnx_path, tmp / "onnx" / "model_int8.onnx")
            res["int8_parity"] = parity(model, onnx_session(q), sample)
            res["macro_f1"]["onnx_int8"] = macro_f1(run_onnx(onnx_session(q), batch)["logits"])
            res["int8_macro_f1_cost"] = round(res["macro_f1"]["pytorch"] - res["macro_f1"]["onnx_int8"], 4)
        atomic_write_json(tmp / "export.json", res)
        write_manifest(tmp, kind="student", stage=STAGE, config=cfg.student, inputs={"model": src},
                       export=True, **{k: v for k, v in res.items() if k != "path"})
    log.info("export: %s", json.dumps({k: v for k, v in res.items() if k != "path"}))
    return res


def run_push(cfg: Config, repo_id: str, folder: str | Path | None = None, private: bool = False,
             dry_run: bool = False) -> dict[str, Any]:
    """Upload the export folder (or ``folder``) as it is; it must be a finished student artifact."""
    from llm2ctr.student.export import push_folder

    src = Path(folder) if folder else export_dir(cfg)
    if folder is None and not (src / "manifest.json").is_file():
        raise ArtifactError(f"{src}: no exported student; run `llm2ctr student export` first (or pass --folder)")
    read_manifest(src, "student")
    return {"folder": str(src), **push_folder(src, repo_id, private=private, dry_run=dry_run)}
