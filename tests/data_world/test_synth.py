"""Synthetic catalogue and pairs: determinism, the labelling rule, label mix, by-query split."""

from __future__ import annotations

import numpy as np
import pytest

from llm2ctr.data.config import SplitConfig, SynthConfig
from llm2ctr.data.store import load_pairs, load_table
from llm2ctr.data.synth import (
    QUERY_ATTRS,
    build_catalogue,
    build_pairs,
    build_queries,
    check_config,
    complement_matrix,
    label_rule,
    synthesize,
)
from llm2ctr.data.synth_vocab import CATEGORIES, COLOURS

SMALL = SynthConfig(items_per_category=300, n_queries=400)


def test_same_seed_same_tables_and_other_seed_differs():
    cat1, pairs1 = synthesize(SMALL, SplitConfig(), seed=3)
    cat2, pairs2 = synthesize(SMALL, SplitConfig(), seed=3)
    assert cat1.equals(cat2) and pairs1.equals(pairs2)
    _, pairs3 = synthesize(SMALL, SplitConfig(), seed=4)
    assert not pairs1.equals(pairs3)


def test_default_world_has_many_categories_brands_and_realistic_titles():
    cfg = SynthConfig()
    assert cfg.n_categories >= 20 and len(CATEGORIES) >= cfg.n_categories
    cat, _ = build_catalogue(SynthConfig(items_per_category=50))
    df = cat.to_pandas()
    assert df["category"].nunique() == cfg.n_categories
    assert (df.groupby("category")["brand"].nunique() >= 4).all()
    # a title names its brand and product type, e.g. "Nike Air Zoom Pegasus 40 men's running shoe, black, size 42"
    assert all(b in t and ty in t for b, ty, t in zip(df["brand"], df["type"], df["title"], strict=True))
    assert df["title"].str.contains(",").mean() > 0.9


def _scalar_rule(q: dict, qi: int, a: dict, ii: int, comp: np.ndarray) -> int:
    """The documented rule written plainly, one pair at a time."""
    if a["cat"][ii] != q["cat"][qi]:
        return 2 if comp[q["cat"][qi], a["cat"][ii]] else 1
    if a["type"][ii] != q["type"][qi]:
        return 3
    for k in QUERY_ATTRS:
        if q[k][qi] >= 0 and a[k][ii] != q[k][qi]:
            return 3
    return 4


def test_vectorised_rule_matches_the_scalar_rule_and_every_level_occurs():
    _, attrs = build_catalogue(SMALL)
    q = build_queries(SMALL, attrs)
    pairs = build_pairs(SMALL, attrs, q)
    comp = complement_matrix(SMALL.n_categories)
    rng = np.random.default_rng(0)
    sample = rng.choice(len(pairs["qi"]), 800, replace=False)
    expected = [_scalar_rule(q, pairs["qi"][s], attrs, pairs["item"][s], comp) for s in sample]
    assert list(pairs["rsl"][sample]) == expected
    assert set(np.unique(pairs["rsl"])) == {1, 2, 3, 4}
    assert np.array_equal(label_rule(q, pairs["qi"], attrs, pairs["item"], comp), pairs["rsl"])


def test_label_levels_follow_categories_and_query_words():
    _, pairs = synthesize(SMALL, SplitConfig())
    df = pairs.to_pandas()
    index = {c.name: c for c in CATEGORIES}
    same = df["item_category"] == df["category"]
    comp = np.array([ic in index[c].complements or c in index[ic].complements
                     for c, ic in zip(df["category"], df["item_category"], strict=True)])
    assert same[df["rsl"].isin([3, 4])].all()
    assert (comp & ~same)[df["rsl"] == 2].all()
    assert (~comp & ~same)[df["rsl"] == 1].all()
    exact = df[df["rsl"] == 4]
    checked_brand = checked_colour = 0
    for query, cat, brand, title in zip(exact["query"], exact["category"], exact["brand"], exact["item_text"],
                                        strict=True):
        named = [b for b in index[cat].brands if query.startswith(b.lower() + " ")]
        if named:  # a query naming a brand only gets that brand's items as exact
            assert brand == max(named, key=len), (query, title)
            checked_brand += 1
        colours = [w for w in query.split() if w in COLOURS]
        if colours:  # ... and a colour only items of that colour
            assert f" {colours[0]}," in title.lower() or title.lower().endswith(f" {colours[0]}"), (query, title)
            checked_colour += 1
    assert checked_brand > 20 and checked_colour > 20


def test_label_mix_pairs_per_query_and_unlabelled_share():
    cfg = SynthConfig(items_per_category=300, n_queries=400, unlabelled_share=0.25, label_mix=[0.4, 0.2, 0.2, 0.2])
    _, pairs = synthesize(cfg, SplitConfig())
    df = pairs.to_pandas()
    per_query = df.groupby("query").size()
    assert per_query.max() == cfg.pairs_per_query and (per_query == cfg.pairs_per_query).mean() > 0.95
    assert df["rsl"].isna().mean() == pytest.approx(0.25, abs=0.02)
    assert df["true_rsl"].notna().all()
    mix = df["true_rsl"].value_counts(normalize=True)
    assert mix[2] == pytest.approx(0.2, abs=0.03) and mix[1] == pytest.approx(0.2, abs=0.03)
    assert mix[4] + mix[3] == pytest.approx(0.6, abs=0.03)
    assert mix[4] > 0.3  # exact items are scarce for narrow queries; the shortfall goes to substitutes


def test_split_is_by_query_with_configured_shares():
    _, pairs = synthesize(SMALL, SplitConfig(valid_share=0.2, test_share=0.1))
    df = pairs.to_pandas()
    assert (df.groupby("query")["split"].nunique() == 1).all()
    q_split = df.drop_duplicates("query")["split"].value_counts(normalize=True)
    assert q_split["valid"] == pytest.approx(0.2, abs=0.01) and q_split["test"] == pytest.approx(0.1, abs=0.01)


def test_bad_config_names_the_key():
    with pytest.raises(ValueError, match="n_categories"):
        check_config(SynthConfig(n_categories=99))
    with pytest.raises(ValueError, match="label_mix"):
        check_config(SynthConfig(label_mix=[1, 0, 0]))


def test_run_synth_writes_catalogue_and_pairs_with_manifests(world):
    pairs = load_pairs(world.stage_dir("data", "pairs"))
    cat = load_table(world.stage_dir("data", "catalogue"), "catalogue")
    assert pairs.num_rows > 0 and cat.num_rows == 300 * world.data.synth.n_categories
    assert set(pairs.column("item_id").to_pylist()) <= set(cat.column("item_id").to_pylist())
    assert len(set(pairs.column("pair_id").to_pylist())) == pairs.num_rows
