"""run_index / run_neighbours end to end on a small pairs table with a tiny real embedder."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from llm2ctr.artifacts import ArtifactError, read_manifest, verify_content
from llm2ctr.cli import main
from llm2ctr.config import Config
from llm2ctr.data.store import load_table
from llm2ctr.rag.artifact import load_rag_index
from llm2ctr.rag.jobs import run_index, run_neighbours

from .conftest import make_pairs, write_pairs


def _norm(s: str) -> str:
    return " ".join(s.lower().split())


def assert_no_leak(pairs: pa.Table, nb: pa.Table, cfg: Config) -> None:
    """Check every row of the neighbours artifact against the pairs table, in plain Python."""
    p = pairs.to_pylist()
    by_id = {r["pair_id"]: r for r in p}
    rows = nb.to_pylist()
    assert [r["pair_id"] for r in rows] == [r["pair_id"] for r in p]  # pairs order, one row each
    for me, r in zip(p, rows, strict=True):
        shown = r["nb_pair_ids"] + r["edge_pair_ids"]
        assert len(set(shown)) == len(shown), r
        seen_keys = set()
        for pid in shown:
            o = by_id[pid]
            assert pid != me["pair_id"]
            assert o["split"] == "train" and o["rsl"] is not None, (me, o)
            key = (_norm(o["query"]), _norm(o["item_text"]))
            assert key != (_norm(me["query"]), _norm(me["item_text"]))
            assert _norm(o["query"]) != _norm(me["query"])  # exclude_same_query is on by default
            assert key not in seen_keys  # duplicates of one another are shown once
            seen_keys.add(key)
        assert r["nb_rsl"] == [by_id[x]["rsl"] for x in r["nb_pair_ids"]]
        assert r["edge_rsl"] == [by_id[x]["rsl"] for x in r["edge_pair_ids"]]
        assert len(r["nb_pair_ids"]) <= cfg.rag.k_neighbours and len(r["edge_pair_ids"]) <= cfg.rag.k_edge_cases
        assert r["nb_sim"] == sorted(r["nb_sim"], reverse=True)
        assert r["edge_sim"] == sorted(r["edge_sim"], reverse=True)
        if r["nb_sim"] and r["edge_sim"]:
            assert r["edge_sim"][0] <= r["nb_sim"][-1] + 1e-6
        # edge-case rule: every edge case disagrees with the neighbours' majority label
        if r["nb_rsl"]:
            counts = {lab: r["nb_rsl"].count(lab) for lab in set(r["nb_rsl"])}
            top = max(counts.values())
            assert counts[r["nb_majority_rsl"]] == top
            assert all(lab != r["nb_majority_rsl"] for lab in r["edge_rsl"])
            assert all(s >= cfg.rag.edge_min_sim for s in r["edge_sim"])


def test_index_and_neighbours_flat(workdir_cfg: Config, pairs_table: pa.Table):
    cfg = workdir_cfg
    summary = run_index(cfg)
    assert summary["index_type"] == "flat"
    m = read_manifest(cfg.stage_dir("rag", "index"), "rag_index")
    labelled_train = sum(
        1 for s, r in zip(pairs_table.column("split").to_pylist(), pairs_table.column("rsl").to_pylist(), strict=True)
        if s == "train" and r is not None
    )
    assert m["count"] == m["counts"]["indexed"] == labelled_train
    assert m["counts"]["pairs"] == pairs_table.num_rows
    assert m["dim"] == 32 and m["metric"] == "inner_product" and m["index_type"] == "flat"
    assert m["embedder"] == cfg.rag.embedder and m["recall_at_k"] == 1.0 and m["build_seconds"] >= 0
    assert m["inputs"]["pairs"]["content_hash"] == read_manifest(cfg.stage_dir("data", "pairs"))["content_hash"]
    verify_content(cfg.stage_dir("rag", "index"))
    rag = load_rag_index(cfg.stage_dir("rag", "index"))
    assert rag.embeddings.shape == (pairs_table.num_rows, 32)
    np.testing.assert_allclose(np.linalg.norm(rag.embeddings, axis=1), 1.0, atol=2e-3)
    assert not (cfg.stage_dir("rag", ".index.work")).exists()  # work chunks removed when done

    out = run_neighbours(cfg)
    nb = load_table(cfg.stage_dir("rag", "neighbours"), "neighbours")
    assert_no_leak(pairs_table, nb, cfg)
    assert out["rows_short_of_k"] == 0  # enough training pairs for everyone
    assert out["rows_with_edge_cases"] > 0
    nm = read_manifest(cfg.stage_dir("rag", "neighbours"), "neighbours")
    assert nm["edge_rule"].startswith("majority") and nm["k_neighbours"] == 5
    assert set(nm["inputs"]) == {"pairs", "rag_index"}


def test_hnsw_index_records_recall_and_gives_same_leak_free_output(workdir_cfg: Config, pairs_table: pa.Table):
    cfg = workdir_cfg
    cfg.rag.index_type = "hnsw"
    cfg.rag.k_edge_cases = 3
    run_index(cfg)
    m = read_manifest(cfg.stage_dir("rag", "index"), "rag_index")
    assert m["index_type"] == "hnsw" and m["recall_queries"] == pairs_table.num_rows
    assert 0.9 <= m["recall_at_k"] <= 1.0  # tiny collection: HNSW is essentially exact
    run_neighbours(cfg)
    assert_no_leak(pairs_table, load_table(cfg.stage_dir("rag", "neighbours"), "neighbours"), cfg)


def test_neighbours_refuses_an_index_of_other_pairs(workdir_cfg: Config, tmp_path: Path):
    cfg = workdir_cfg
    run_index(cfg)
    other = write_pairs(make_pairs(seed=7), tmp_path / "other_pairs")
    with pytest.raises(ArtifactError, match="built from another pairs table"):
        run_neighbours(cfg, pairs_dir=other)


def test_cli_verbs_with_pairs_flag(workdir_cfg: Config, tmp_path: Path, capsys: pytest.CaptureFixture):
    cfg = workdir_cfg
    pairs = cfg.stage_dir("data", "pairs")
    wd = tmp_path / "cli_run"
    common = [f"workdir={wd}", f"rag.embedder={cfg.rag.embedder}", "rag.k_neighbours=3", "rag.k_edge_cases=1"]
    assert main(["rag", "index", "--pairs", str(pairs), *common]) == 0
    assert '"index_type": "flat"' in capsys.readouterr().out
    assert main(["rag", "neighbours", "--pairs", str(pairs), *common]) == 0
    nb = load_table(wd / "rag" / "neighbours", "neighbours")
    assert max(len(x) for x in nb.column("nb_pair_ids").to_pylist()) == 3
    # a missing input is one clear message, exit code 2
    assert main(["rag", "neighbours", f"workdir={tmp_path / 'nothing'}"]) == 2
    assert "artifact directory does not exist" in capsys.readouterr().err


def test_no_training_pairs_is_a_clear_error(tmp_path: Path, tiny_st_model: str):
    t = make_pairs()
    t = t.set_column(t.schema.get_field_index("split"), "split", pa.array(["test"] * t.num_rows))
    cfg = Config(workdir=str(tmp_path / "w"))
    write_pairs(t, cfg.stage_dir("data", "pairs"))
    cfg.rag = dataclasses.replace(cfg.rag, embedder=tiny_st_model)
    from llm2ctr.cli.common import UserError

    with pytest.raises(UserError, match="no labelled pairs in the 'train' split"):
        run_index(cfg)


def test_neighbours_resume_after_a_crash_is_identical(workdir_cfg: Config, monkeypatch: pytest.MonkeyPatch):
    cfg = workdir_cfg
    cfg.rag.chunk_size = 32  # 7 chunks for 204 pairs
    run_index(cfg)
    clean = run_neighbours(cfg)["content_hash"]
    import llm2ctr.rag.jobs as jobs

    real, calls, crash = jobs.retrieve, [], [True]

    def crash_on_third(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3 and crash:
            raise RuntimeError("simulated kill")
        return real(*args, **kwargs)

    monkeypatch.setattr(jobs, "retrieve", crash_on_third)
    with pytest.raises(RuntimeError, match="simulated kill"):
        run_neighbours(cfg)
    assert len(list(cfg.stage_dir("rag", ".neighbours.work").glob("chunk-*.npz"))) == 2
    calls.clear()
    crash.clear()
    assert run_neighbours(cfg)["content_hash"] == clean
    assert len(calls) == 5  # only the 5 missing chunks were searched again


def test_bad_config_fails_before_any_embedding(workdir_cfg: Config):
    from llm2ctr.cli.common import UserError

    cfg = workdir_cfg
    cfg.rag.index_type = "annoy"
    with pytest.raises(UserError, match="expected one of auto, flat, hnsw, ivfpq"):
        run_index(cfg)
    assert not cfg.stage_dir("rag", ".index.work").exists()
    cfg.rag.index_type, cfg.rag.k_neighbours = "flat", 0
    with pytest.raises(UserError, match="rag.k_neighbours=0: expected a positive integer"):
        run_index(cfg)
