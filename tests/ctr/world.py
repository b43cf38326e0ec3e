"""A small simulated search log with known ground truth, written in the data stage's contracts.

Deliberately small and fast (a few seconds) so the ranker tests train on real artifacts: pairs
with graded relevance in their text, users with a relevance sensitivity per category, an exposure
policy that favours rsl=4, position bias, a counterfactual all-candidates set, history and
cross-user sequences, and a tiny student encoder folder.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from llm2ctr.artifacts import atomic_dir, write_manifest
from llm2ctr.data.store import save_table

WORDS = [f"w{i}" for i in range(420)]


def build_world(root: Path, n_users: int = 400, n_requests: int = 4000, n_queries: int = 240, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    n_cat, per_q, slate = 6, 10, 6
    cats = [f"cat{c}" for c in range(n_cat)]
    cat_words = np.array(WORDS).reshape(n_cat, -1)  # disjoint vocab per category
    q_cat = rng.integers(0, n_cat, n_queries)
    q_words = [rng.choice(cat_words[c], 2, replace=False) for c in q_cat]
    queries = [" ".join(w) for w in q_words]
    pair_rows = {k: [] for k in ("pair_id", "query", "item_id", "item_text", "rsl", "category", "split")}
    q_pairs = []
    levels = np.array([4, 4, 4, 4, 3, 3, 2, 2, 1, 1])
    for qi in range(n_queries):
        c, (a, b) = q_cat[qi], q_words[qi]
        ids = []
        for j, lev in enumerate(levels):
            filler = list(rng.choice(cat_words[c], 3))
            if lev == 4:
                text = [a, b] + filler
            elif lev == 3:
                text = [b] + filler
            elif lev == 2:
                text = filler
            else:
                text = list(rng.choice(cat_words[(c + 1 + j) % n_cat], 4))
            pid = f"q{qi}-{j}"
            ids.append(pid)
            pair_rows["pair_id"].append(pid)
            pair_rows["query"].append(queries[qi])
            pair_rows["item_id"].append(f"i{qi}-{j}")
            pair_rows["item_text"].append(" ".join(rng.permutation(text)))
            pair_rows["rsl"].append(int(lev))
            pair_rows["category"].append(cats[c])
            pair_rows["split"].append("train")
        q_pairs.append(ids)
    pairs = pa.table(pair_rows).cast(pa.schema([(k, pa.int8() if k == "rsl" else pa.string()) for k in pair_rows]))
    attract = rng.normal(0, 0.5, (n_queries, per_q))
    cat_sens = np.linspace(0.3, 1.6, n_cat)
    sens = np.clip(cat_sens[rng.integers(0, n_cat, n_users)] + rng.normal(0, 0.4, n_users), 0.05, None)
    fav = rng.integers(0, n_cat, n_users)
    activity = rng.pareto(1.2, n_users) + 0.05
    users = rng.choice(n_users, n_requests, p=activity / activity.sum())
    ts = np.sort(rng.integers(0, 9 * 86400, n_requests))
    cat = np.where(rng.random(n_requests) < 0.7, fav[users], rng.integers(0, n_cat, n_requests))
    by_cat = [np.flatnonzero(q_cat == c) for c in range(n_cat)]
    qi = np.array([rng.choice(by_cat[c]) if by_cat[c].size else rng.integers(n_queries) for c in cat])
    cat = q_cat[qi]
    order = np.argsort(-((levels == 4) * 3.0 + rng.gumbel(size=(n_requests, per_q))), axis=1)
    pos = np.empty_like(order)
    np.put_along_axis(pos, order, np.arange(1, per_q + 1)[None, :].repeat(n_requests, 0), axis=1)
    ios = rng.random(n_requests) < 0.4
    logit = -3.0 + sens[users][:, None] * (levels[None, :] - 2.5) + attract[qi] + 0.3 * ios[:, None]
    p = 1 / (1 + np.exp(-logit)) / pos**0.7
    click = rng.random(p.shape) < p
    rep = lambda a: np.repeat(np.asarray(a), per_q)  # noqa: E731
    j = np.tile(np.arange(per_q), n_requests)
    q_rep = rep(qi)
    ev = {
        "request_id": [f"r{r}" for r in rep(np.arange(n_requests))],
        "user_id": [f"u{u}" for u in rep(users)],
        "ts": rep(ts).astype(np.int64),
        "query": [queries[q] for q in q_rep],
        "category": [cats[c] for c in rep(cat)],
        "item_id": [f"i{q}-{k}" for q, k in zip(q_rep, j, strict=True)],
        "pair_id": [f"q{q}-{k}" for q, k in zip(q_rep, j, strict=True)],
        "position": pos.ravel().astype(np.int16),
        "click": click.ravel().astype(np.int8),
        "rsl": levels[j].astype(np.int8),
        "f_device": np.where(rep(ios), "ios", "android"),
        "n_price": (attract[q_rep, j] * 10 + 50).astype(np.float64),
        "split": np.where(rep(ts) < 7 * 86400, "train", "test"),
        "exposed": pos.ravel() <= slate,
    }
    exposed = ev["exposed"]
    cf = pa.table(ev)
    events = cf.filter(pa.array(exposed)).drop_columns(["exposed"])
    hist = _history(events, q_cat, queries)
    root.mkdir(parents=True, exist_ok=True)
    data = root / "data"
    save_table(pairs, data / "pairs", kind="pairs", stage="data")
    save_table(events, data / "events", kind="events", stage="data")
    save_table(cf, data / "counterfactual", kind="events", stage="data")
    save_table(hist, data / "history", kind="history", stage="data")
    import datasets

    with atomic_dir(data / "ground_truth") as tmp:  # same layout as llm2ctr.data.jobs.run_simulate
        datasets.Dataset(pa.table({"user_id": [f"u{i}" for i in range(n_users)], "sensitivity": sens})).save_to_disk(
            str(tmp / "users"))
        ev_sens = np.repeat(sens[users], per_q)[exposed]
        datasets.Dataset(pa.table({"sensitivity": ev_sens.astype(np.float32)})).save_to_disk(str(tmp / "events"))
        write_manifest(tmp, kind="ground_truth", stage="data")
    build_student(root / "student" / "model", pair_rows["query"] + pair_rows["item_text"], seed)


def _history(events: pa.Table, q_cat: np.ndarray, queries: list[str]) -> pa.Table:
    """Per request: the user's last 20 clicks before ts; cross-user: clicks of the category's 50
    most active users before ts, ranked by query token overlap (best first)."""
    df = events.to_pandas()
    clicks = df[df.click == 1].sort_values("ts", kind="stable")
    reqs = df.drop_duplicates("request_id")[["request_id", "user_id", "ts", "query", "category"]]
    active = df.groupby(["category", "user_id"]).size().reset_index(name="n")
    top = {c: set(g.nlargest(50, "n").user_id) for c, g in active.groupby("category")}
    by_user = {u: (g.ts.to_numpy(), g) for u, g in clicks.groupby("user_id")}
    by_cat = {}
    for c, g in clicks.groupby("category"):
        g = g[g.user_id.isin(top.get(c, set()))]
        by_cat[c] = (g.ts.to_numpy(), np.array([q.split() for q in g["query"]]).reshape(len(g), -1), g)
    out = {k: [] for k in ("request_id", "hist_pair_ids", "hist_clicks", "hist_rsl", "hist_ts", "cross_pair_ids",
                           "cross_clicks", "cross_rsl", "cross_sim", "n_hist")}
    empty = clicks.iloc[:0]
    for r in reqs.itertuples():
        h = empty
        if r.user_id in by_user:
            uts, g = by_user[r.user_id]
            k = np.searchsorted(uts, r.ts, "left")
            h = g.iloc[max(0, k - 20) : k]
        cands, sim = empty, np.zeros(0, np.float32)
        if r.category in by_cat:
            cts, words, g = by_cat[r.category]
            k = np.searchsorted(cts, r.ts, "left")
            qw = r.query.split()
            sim = (np.isin(words[:k], qw).sum(1) / 2).astype(np.float32)
            best = np.argsort(-sim, kind="stable")[:20]
            cands, sim = g.iloc[best], sim[best]
        out["request_id"].append(r.request_id)
        out["hist_pair_ids"].append(list(h.pair_id))
        out["hist_clicks"].append(list(h.click))
        out["hist_rsl"].append(list(h.rsl))
        out["hist_ts"].append(list(h.ts))
        out["cross_pair_ids"].append(list(cands.pair_id))
        out["cross_clicks"].append(list(cands.click))
        out["cross_rsl"].append(list(cands.rsl))
        out["cross_sim"].append(list(sim))
        out["n_hist"].append(len(h))
    schema = pa.schema([
        ("request_id", pa.string()), ("hist_pair_ids", pa.list_(pa.string())), ("hist_clicks", pa.list_(pa.int8())),
        ("hist_rsl", pa.list_(pa.int8())), ("hist_ts", pa.list_(pa.int64())), ("cross_pair_ids", pa.list_(pa.string())),
        ("cross_clicks", pa.list_(pa.int8())), ("cross_rsl", pa.list_(pa.int8())), ("cross_sim", pa.list_(pa.float32())),
        ("n_hist", pa.int32()),
    ])
    return pa.table(out, schema=schema)


def build_student(folder: Path, texts: list[str], seed: int) -> None:
    """A tiny real student (tokenizer + stock BERT, random weights) with a manifest."""
    import torch

    from llm2ctr.student.artifact import write_student
    from llm2ctr.student.modeling import Student, student_config
    from llm2ctr.student.tokenization import build_tokenizer

    torch.manual_seed(seed)
    tok = build_tokenizer(texts, 600)
    model = Student.from_config(student_config(len(tok), d_model=32, num_layers=1, num_heads=2, ffn_dim=64,
                                               dropout=0.0), teacher_dim=16)
    with atomic_dir(folder) as tmp:
        write_student(model, tok, tmp, max_length=64)
        write_manifest(tmp, kind="student", stage="student")
