"""Synthetic e-commerce catalogue and graded query-item pairs with a documented labelling rule.

Why synthetic: the toolkit needs a world where the relevance of every pair is known by
construction, so every later stage can be checked end to end without a proprietary log.

The rule (``label_rule``), for a query naming a category's product type plus optional brand,
colour and variant (size, storage ...):

- 4 exact: the item is in the query's category, of the query's type, and matches every
  attribute the query names;
- 3 substitute: same category but a different type, brand, colour or variant;
- 2 complement: the item is in a complementary category (a phone case for a phone query);
- 1 irrelevant: anything else.

``label_mix`` is the target share of each level; candidates are drawn per level and then
labelled by the rule, so the rule always wins (a query with only two exact items gets two rsl 4
pairs and its remaining slots become substitutes). Everything is vectorised over pairs; only the
catalogue titles and query texts (thousands, not millions) are formatted in Python.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from llm2ctr.data.config import SplitConfig, SynthConfig
from llm2ctr.data.splits import assign_pair_splits
from llm2ctr.data.synth_vocab import CATEGORIES, Category
from llm2ctr.errors import ConfigError

# attributes a query may name besides its product type, in the order of query_attribute_prob
QUERY_ATTRS = ("brand", "colour", "variant", "material", "series")
N_MASKS = 1 << len(QUERY_ATTRS)  # which of them a query names: one bit each


def _rng(seed: int, synth_seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), int(synth_seed), stream])


def check_config(cfg: SynthConfig) -> None:
    """Refuse settings the generator cannot honour, naming the key and the allowed range."""
    if not 1 <= cfg.n_categories <= len(CATEGORIES):
        raise ConfigError(f"data.synth.n_categories={cfg.n_categories}: expected 1..{len(CATEGORIES)} "
                         "(the built-in vocabulary's size, llm2ctr/data/synth_vocab.py)")
    if cfg.items_per_category < 1 or cfg.n_queries < 1 or cfg.pairs_per_query < 1:
        raise ConfigError("data.synth.items_per_category, n_queries and pairs_per_query must be >= 1")
    mix = np.asarray(cfg.label_mix, dtype=float)
    if mix.shape != (4,) or (mix < 0).any() or mix.sum() <= 0:
        raise ConfigError(f"data.synth.label_mix={cfg.label_mix}: expected 4 non-negative shares for rsl 4,3,2,1")
    if not 0.0 <= cfg.unlabelled_share < 1.0:
        raise ConfigError(f"data.synth.unlabelled_share={cfg.unlabelled_share}: expected 0 <= share < 1")
    if len(cfg.query_attribute_prob) != len(QUERY_ATTRS):
        raise ConfigError(f"data.synth.query_attribute_prob={cfg.query_attribute_prob}: expected "
                         f"{len(QUERY_ATTRS)} probabilities ({', '.join(QUERY_ATTRS)})")


def _zipf_draw(rng: np.random.Generator, k: int, n: int, power: float = 1.0) -> np.ndarray:
    """n draws from 0..k-1 with Zipf weights over a random order (black shoes outnumber pink ones)."""
    w = 1.0 / (rng.permutation(k) + 1.0) ** power
    return rng.choice(k, size=n, p=w / w.sum())


def _categories(n: int) -> tuple[Category, ...]:
    return CATEGORIES[:n]


def build_catalogue(cfg: SynthConfig, seed: int = 0) -> tuple[pa.Table, dict[str, np.ndarray]]:
    """Items with integer attributes (for the rule) and a realistic title (for the encoders)."""
    cats = _categories(cfg.n_categories)
    rng = _rng(seed, cfg.seed, 1)
    n = cfg.items_per_category
    cols: dict[str, list[np.ndarray]] = {k: [] for k in
                                         ("cat", "type", "brand", "colour", "variant", "material", "series", "price")}
    titles: list[str] = []
    brand_names: list[str] = []
    type_names: list[str] = []
    colour_names: list[str] = []
    variant_names: list[str] = []
    material_names: list[str] = []
    for ci, c in enumerate(cats):
        brands = list(c.brands)
        # popular brands first: Zipf-like brand shares inside a category
        b = _zipf_draw(rng, len(brands), n, 0.8)
        n_series = np.array([len(c.brands[x]) for x in brands])
        s = np.floor(rng.random(n) * n_series[b]).astype(np.int64)
        series_id = (np.cumsum(n_series) - n_series)[b] + s  # unique within the category
        t = _zipf_draw(rng, len(c.types), n)
        col = _zipf_draw(rng, len(c.colours), n)
        var = _zipf_draw(rng, len(c.variants), n)
        mat = _zipf_draw(rng, len(c.materials), n)
        num = rng.integers(0, len(c.numbers), n)
        ext = rng.integers(0, len(c.extras), n)
        lo, hi = np.log(c.price[0]), np.log(c.price[1])
        price = np.round(np.exp(lo + (hi - lo) * rng.beta(2.0, 2.0, n))) - 0.01
        for i in range(n):
            br = brands[b[i]]
            text = c.title.format(brand=br, series=c.brands[br][s[i]], number=c.numbers[num[i]],
                                  extra=c.extras[ext[i]], type=c.types[t[i]], colour=c.colours[col[i]],
                                  variant=c.variants[var[i]], material=c.materials[mat[i]])
            titles.append(" ".join(text.replace(" ,", ",").split()).strip(", "))
        brand_names += [brands[x] for x in b]
        type_names += [c.types[x] for x in t]
        colour_names += [c.colours[x] for x in col]
        variant_names += [c.variants[x] for x in var]
        material_names += [c.materials[x] for x in mat]
        for k, v in (("cat", np.full(n, ci)), ("type", t), ("brand", b), ("colour", col), ("variant", var),
                     ("material", mat), ("series", series_id), ("price", price)):
            cols[k].append(v)
    attrs = {k: np.concatenate(v) for k, v in cols.items()}
    n_items = len(titles)
    item_ids = np.char.mod("item%06d", np.arange(n_items)).astype(object)
    attrs["item_id"] = item_ids
    attrs["title"] = np.array(titles, dtype=object)
    attrs["brand_name"] = np.array(brand_names, dtype=object)
    cat_names = np.array([c.name for c in cats], dtype=object)
    table = pa.table({
        "item_id": pa.array(item_ids, pa.string()),
        "title": pa.array(titles, pa.string()),
        "category": pa.array(cat_names[attrs["cat"]], pa.string()),
        "type": pa.array(type_names, pa.string()),
        "brand": pa.array(brand_names, pa.string()),
        "colour": pa.array(colour_names, pa.string()),
        "variant": pa.array(variant_names, pa.string()),
        "material": pa.array(material_names, pa.string()),
        "price": pa.array(attrs["price"], pa.float32()),
    })
    return table, attrs


def _mask_key(cat: np.ndarray, typ: np.ndarray, vals: dict[str, np.ndarray], mask: int | np.ndarray) -> np.ndarray:
    """Mixed-radix key of the attributes a mask names (0 = wildcard, value + 1 otherwise).

    ``mask`` is one mask for every row or one per row; equal keys mean equal query specs.
    """
    key = cat.astype(np.int64) * 16 + typ
    for bit, name in enumerate(QUERY_ATTRS):
        key = key * 64 + (vals[name] + 1) * (np.asarray(mask) >> bit & 1)
    return key


def exact_index(attrs: dict[str, np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
    """(pool, sorted keys per mask): the items sorted by the key of every mask, concatenated."""
    pools, keys = [], []
    for m in range(N_MASKS):
        ik = _mask_key(attrs["cat"], attrs["type"], attrs, m)
        order = np.argsort(ik, kind="stable")
        pools.append(order)
        keys.append(ik[order])
    return np.concatenate(pools), keys


def exact_ranges(attrs: dict[str, np.ndarray], q: dict[str, np.ndarray],
                 index: tuple[np.ndarray, list[np.ndarray]] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(pool, start, end): pool[start[i]:end[i]] are the items exactly matching query i.

    One sorted item order per mask (``exact_index``, reusable); a query's matches are a
    contiguous run found by binary search.
    """
    pool, keys = index if index is not None else exact_index(attrs)
    nq = len(q["cat"])
    starts, ends = np.zeros(nq, np.int64), np.zeros(nq, np.int64)
    base = 0
    for m, sk in enumerate(keys):
        sel = np.flatnonzero(q["mask"] == m)
        qk = _mask_key(q["cat"][sel], q["type"][sel], {k: q[k][sel] for k in QUERY_ATTRS}, m)
        starts[sel] = base + np.searchsorted(sk, qk, "left")
        ends[sel] = base + np.searchsorted(sk, qk, "right")
        base += len(sk)
    return pool, starts, ends


def _series_names(c: Category) -> list[str]:
    return [name for series in c.brands.values() for name in series]


def _query_texts(cats: tuple[Category, ...], attrs: dict[str, np.ndarray], items: np.ndarray,
                 mask: np.ndarray) -> list[str]:
    texts = []
    for i, m in zip(items.tolist(), mask.tolist(), strict=True):
        c = cats[attrs["cat"][i]]
        parts = [list(c.brands)[attrs["brand"][i]].lower()] if m & 1 else []
        if m & 16:
            parts.append(_series_names(c)[attrs["series"][i]].lower())
        parts.append(c.types[attrs["type"][i]].lower())
        if m & 2:
            parts.append(c.colours[attrs["colour"][i]])
        if m & 8:
            parts.append(c.materials[attrs["material"][i]].lower())
        if m & 4:
            parts.append(c.variant_label.format(c.variants[attrs["variant"][i]]).lower())
        texts.append(" ".join(parts))
    return texts


def build_queries(cfg: SynthConfig, attrs: dict[str, np.ndarray], seed: int = 0) -> dict[str, np.ndarray]:
    """Queries written from a seed item: its type plus a random subset of brand, series, colour, variant, material.

    A drawn query is kept with probability min(1, exact matches / exact pairs wanted)², so the
    catalogue can serve the rsl-4 share of ``label_mix`` (narrow queries are rarer, as in real
    search logs); duplicate texts are dropped. Draws go on in rounds until n_queries are found.
    """
    cats = _categories(cfg.n_categories)
    rng = _rng(seed, cfg.seed, 2)
    p = np.asarray(cfg.query_attribute_prob, dtype=float)
    mix = np.asarray(cfg.label_mix, dtype=float)
    want4 = max(1.0, cfg.pairs_per_query * mix[0] / mix.sum())
    no_colour = np.array([c.colours == ("",) for c in cats])
    one_material = np.array([len(c.materials) == 1 for c in cats])
    got: dict[str, list[np.ndarray]] = {}
    seen: set[str] = set()
    seen_specs = np.zeros(0, np.int64)
    index = exact_index(attrs)
    n_found = 0
    for _ in range(30):
        n_draw = 2 * (cfg.n_queries - n_found) + 64
        items = rng.integers(0, len(attrs["cat"]), n_draw)
        bits = rng.random((n_draw, len(QUERY_ATTRS))) < p
        qcat = attrs["cat"][items]
        bits[:, 1] &= ~no_colour[qcat]
        bits[:, 3] &= ~one_material[qcat]
        mask = (bits * (1 << np.arange(len(QUERY_ATTRS)))).sum(1)
        cand = {"cat": qcat, "type": attrs["type"][items], "mask": mask, "seed_item": items}
        for bit, k in enumerate(QUERY_ATTRS):
            cand[k] = np.where(mask >> bit & 1, attrs[k][items], -1)
        _, st, en = exact_ranges(attrs, cand, index)
        ok = rng.random(n_draw) < np.minimum(1.0, (en - st) / want4) ** 2
        spec = _mask_key(qcat, cand["type"], {k: attrs[k][items] for k in QUERY_ATTRS}, mask)
        spec = np.where(ok, spec, -1)
        _, first_at = np.unique(spec, return_index=True)
        idx = np.sort(first_at[(spec[first_at] >= 0) & ~np.isin(spec[first_at], seen_specs)])
        texts = _query_texts(cats, attrs, items[idx], mask[idx])
        fresh = []
        for j, t in zip(idx.tolist(), texts, strict=True):
            if t not in seen and n_found + len(fresh) < cfg.n_queries:
                seen.add(t)
                fresh.append((j, t))
        if fresh:
            sel = np.array([j for j, _ in fresh])
            seen_specs = np.union1d(seen_specs, spec[sel])
            for k, v in cand.items():
                got.setdefault(k, []).append(v[sel])
            got.setdefault("text", []).append(np.array([t for _, t in fresh], dtype=object))
            n_found += len(fresh)
        if n_found >= cfg.n_queries:
            break
    if n_found == 0:
        raise ConfigError("data.synth: could not write any query; raise items_per_category")
    return {k: np.concatenate(v) for k, v in got.items()}


def complement_matrix(n_categories: int) -> np.ndarray:
    """Symmetric bool matrix: category i and j complement each other (only categories present)."""
    cats = _categories(n_categories)
    index = {c.name: i for i, c in enumerate(cats)}
    comp = np.zeros((len(cats), len(cats)), dtype=bool)
    for i, c in enumerate(cats):
        for other in c.complements:
            if other in index:
                comp[i, index[other]] = comp[index[other], i] = True
    return comp


def label_rule(q: dict[str, np.ndarray], qi: np.ndarray, attrs: dict[str, np.ndarray], ii: np.ndarray,
               comp: np.ndarray) -> np.ndarray:
    """rsl of (query qi, item ii) pairs by the documented rule, vectorised."""
    same_cat = attrs["cat"][ii] == q["cat"][qi]
    exact = same_cat & (attrs["type"][ii] == q["type"][qi])
    for k in QUERY_ATTRS:
        qv = q[k][qi]
        exact &= (qv < 0) | (attrs[k][ii] == qv)
    rsl = np.ones(len(qi), dtype=np.int8)
    rsl[comp[q["cat"][qi], attrs["cat"][ii]]] = 2
    rsl[same_cat] = 3
    rsl[exact] = 4
    return rsl


def _ragged_arange(counts: np.ndarray) -> np.ndarray:
    """0..c-1 for every c in counts, concatenated (the within-group index of a repeat)."""
    total = int(counts.sum())
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    return np.arange(total) - starts


def _draw_from_tables(rng: np.random.Generator, table: np.ndarray, sizes: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """For each row r, a uniform pick among table[r, :sizes[r]] (sizes must be >= 1)."""
    pick = np.floor(rng.random(len(rows)) * sizes[rows]).astype(np.int64)
    return table[rows, pick]


def build_pairs(cfg: SynthConfig, attrs: dict[str, np.ndarray], q: dict[str, np.ndarray],
                seed: int = 0) -> dict[str, np.ndarray]:
    """(query index, item index, rsl) for every pair, pairs_per_query per query where possible."""
    rng = _rng(seed, cfg.seed, 3)
    n_cat = cfg.n_categories
    nq = len(q["cat"])
    per = cfg.pairs_per_query
    cat_count = np.bincount(attrs["cat"], minlength=n_cat)
    cat_start = np.cumsum(cat_count) - cat_count
    comp = complement_matrix(n_cat)

    exact_pool, starts, ends = exact_ranges(attrs, q)
    n_exact = ends - starts

    mix = np.asarray(cfg.label_mix, dtype=float)
    counts = rng.multinomial(per, mix / mix.sum(), size=nq)
    n4 = np.minimum(counts[:, 0], n_exact)
    counts[:, 1] += counts[:, 0] - n4
    counts[:, 0] = n4
    n_comp = comp.sum(1)
    no_comp = n_comp[q["cat"]] == 0
    counts[no_comp, 3] += counts[no_comp, 2]
    counts[no_comp, 2] = 0
    # spare draws (lowest priority) replace the few duplicates removed below
    spare = np.array([0, 2, 1, 1])
    counts = counts + spare * (counts.sum(1, keepdims=True) > 0)

    # rsl 4: distinct items of the query's exact range, starting at a random offset
    qi4 = np.repeat(np.arange(nq), counts[:, 0])
    j4 = _ragged_arange(counts[:, 0])
    off = rng.integers(0, np.maximum(n_exact, 1))
    it4 = exact_pool[starts[qi4] + (off[qi4] + j4) % np.maximum(n_exact[qi4], 1)]
    # rsl 3: any item of the query's category (the rule relabels the ones that happen to be exact)
    qi3 = np.repeat(np.arange(nq), counts[:, 1])
    c3 = q["cat"][qi3]
    it3 = cat_start[c3] + np.floor(rng.random(len(qi3)) * cat_count[c3]).astype(np.int64)
    # rsl 2: an item of a complementary category
    comp_table = np.array([np.r_[np.flatnonzero(r), np.zeros(n_cat - r.sum(), int)] for r in comp])
    qi2 = np.repeat(np.arange(nq), counts[:, 2])
    c2 = _draw_from_tables(rng, comp_table, np.maximum(n_comp, 1), q["cat"][qi2])
    it2 = cat_start[c2] + np.floor(rng.random(len(qi2)) * cat_count[c2]).astype(np.int64)
    # rsl 1: an item of a category that is neither the query's nor a complement
    unrel = ~comp & ~np.eye(n_cat, dtype=bool)
    n_unrel = unrel.sum(1)
    unrel_table = np.array([np.r_[np.flatnonzero(r), np.zeros(n_cat - r.sum(), int)] for r in unrel])
    qi1 = np.repeat(np.arange(nq), counts[:, 3])
    if n_unrel.min() == 0:  # a world with only one category (or one complement pair)
        c1 = q["cat"][qi1]
    else:
        c1 = _draw_from_tables(rng, unrel_table, n_unrel, q["cat"][qi1])
    it1 = cat_start[c1] + np.floor(rng.random(len(qi1)) * cat_count[c1]).astype(np.int64)

    qi = np.concatenate([qi4, qi3, qi2, qi1])
    it = np.concatenate([it4, it3, it2, it1])
    lvl = np.concatenate([np.full(len(qi4), 0), np.full(len(qi3), 1), np.full(len(qi2), 2), np.full(len(qi1), 3)])
    within = np.concatenate([_ragged_arange(counts[:, k]) for k in range(4)])
    is_spare = within >= (counts[qi, lvl] - spare[lvl])
    prio = rng.random(len(qi)) + is_spare

    # drop duplicate (query, item) pairs, keep the best-priority copy, then the first `per` per query
    order = np.lexsort((prio, it, qi))
    qi, it, prio = qi[order], it[order], prio[order]
    first = np.r_[True, (qi[1:] != qi[:-1]) | (it[1:] != it[:-1])]
    qi, it, prio = qi[first], it[first], prio[first]
    order = np.lexsort((prio, qi))
    qi, it = qi[order], it[order]
    rank = _ragged_arange(np.bincount(qi, minlength=nq))
    keep = rank < per
    qi, it = qi[keep], it[keep]
    rsl = label_rule(q, qi, attrs, it, comp)
    return {"qi": qi, "item": it, "rsl": rsl}


def synthesize(cfg: SynthConfig, split: SplitConfig, seed: int = 0) -> tuple[pa.Table, pa.Table]:
    """(catalogue, pairs) tables; same config and seed give identical tables."""
    check_config(cfg)
    catalogue, attrs = build_catalogue(cfg, seed)
    q = build_queries(cfg, attrs, seed)
    pairs = build_pairs(cfg, attrs, q, seed)
    qi, it, rsl = pairs["qi"], pairs["item"], pairs["rsl"]
    rng = _rng(seed, cfg.seed, 4)
    labelled = rng.random(len(qi)) >= cfg.unlabelled_share
    cat_names = np.array([c.name for c in _categories(cfg.n_categories)], dtype=object)
    n = len(qi)
    table = pa.table({
        "pair_id": pa.array(np.char.mod("p%08d", np.arange(n)).astype(object), pa.string()),
        "query": pa.array(q["text"][qi], pa.string()),
        "item_id": pa.array(attrs["item_id"][it], pa.string()),
        "item_text": pa.array(attrs["title"][it], pa.string()),
        "rsl": pa.array(rsl, pa.int8(), mask=~labelled),
        "category": pa.array(cat_names[q["cat"][qi]], pa.string()),
        "split": pa.array(np.full(n, "train", dtype=object), pa.string()),
        "query_id": pa.array(np.char.mod("q%06d", qi).astype(object), pa.string()),
        "item_category": pa.array(cat_names[attrs["cat"][it]], pa.string()),
        "brand": pa.array(attrs["brand_name"][it], pa.string()),
        "price": pa.array(attrs["price"][it], pa.float32()),
        "true_rsl": pa.array(rsl, pa.int8()),
    })
    # the same by-query split as `data import` (llm2ctr.data.splits), seeded by both seeds
    table = assign_pair_splits(table, method=split.method, valid_share=split.valid_share,
                               test_share=split.test_share, seed=int(split.seed) + 7919 * int(seed))
    return catalogue, table
