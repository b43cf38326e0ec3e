"""Data stage configuration (defaults give the quickstart's synthetic world)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class SynthConfig:
    """Synthetic catalogue and labelled query-item pairs (rule: exact 4, substitute 3, complement 2, irrelevant 1).

    See docs/data-simulator.md for the labelling rule; ``label_mix`` is a target, the rule decides.
    """

    n_categories: int = 24  # at most the built-in vocabulary's size (llm2ctr.data.synth.CATEGORIES)
    items_per_category: int = 1000  # enough that narrow queries still have ~10 exact items
    n_queries: int = 4000
    pairs_per_query: int = 24  # >= simulate.candidates_per_request so each request has a full pool
    # share of pairs at rsl 4, 3, 2, 1 (normalised)
    label_mix: list[float] = field(default_factory=lambda: [0.45, 0.2, 0.15, 0.2])
    # share of pairs left unlabelled (rsl null) -- distillation can still use them
    unlabelled_share: float = 0.0
    # chance that a query names each attribute: brand, colour, variant (size, storage ...), material, series
    query_attribute_prob: list[float] = field(default_factory=lambda: [0.5, 0.35, 0.25, 0.15, 0.2])
    seed: int = 0


@dataclass
class ImportConfig:
    """How ``data import`` reads a user's file. ``column_map`` maps our names to theirs."""

    format: str = "auto"  # auto | csv | tsv | parquet | jsonl | hf; files may be .gz/.bz2/.xz/.zst compressed
    encoding: str = "utf-8"
    column_map: dict[str, str] = field(default_factory=dict)
    # auto | int | continuous | esci | map ; see docs in llm2ctr/data/labels.py
    label_scale: str = "auto"
    label_map: dict[str, int] = field(default_factory=dict)
    # bins for continuous scales: values < b0 -> 1, < b1 -> 2, < b2 -> 3, else 4
    continuous_bins: list[float] = field(default_factory=lambda: [1.5, 2.0, 2.5])
    on_bad_rows: str = "error"  # error | skip
    max_text_chars: int = 2000
    default_category: str = "unknown"
    # [low, high] of the label scale; empty = 1..4 for integers (0..3 if the data use it), 1..3 for continuous
    # (the default bins' scale). Continuous values outside it are bad rows; every bin edge must lie inside it
    label_range: list[float] = field(default_factory=list)
    # when our column names are absent, try well-known ones (search_term, product_title, relevance, ...)
    auto_alias: bool = True
    # where bad rows are listed (csv); empty = next to the output as <out>_rejects.csv
    rejects: str = ""


@dataclass
class SplitConfig:
    """How pairs and events are split. Pairs split by query so no query is in two splits."""

    method: str = "query"  # pairs: random | query ; events: random | user | request | time
    valid_share: float = 0.1
    test_share: float = 0.1
    seed: int = 0
    # events: the paper trains on 7 days and tests on the next 2 (test = last 2/9 of the time range)
    event_method: str = "time"  # random | user | request | time
    event_valid_share: float = 0.0
    event_test_share: float = 2 / 9


@dataclass
class SimulateConfig:
    """Click simulator (DESIGN.md section 5). Every parameter of the generating process is here."""

    n_users: int = 3000
    n_requests: int = 30000
    days: int = 9  # paper: 7 days train, 2 days test
    test_days: int = 2
    start_ts: int = 1767225600  # 2026-01-01T00:00:00Z, first second of the log
    # heavy-tailed activity: Pareto shape; smaller = heavier tail, more cold-start users
    activity_alpha: float = 1.2
    activity_cap: float = 50.0  # activity is clipped here (median user ~0.8): no single user floods the log
    # per-category mean relevance sensitivity and its spread across users
    sensitivity_mean_range: list[float] = field(default_factory=lambda: [0.5, 2.5])
    sensitivity_sd: float = 0.5
    slate_size: int = 10  # items exposed per request
    candidates_per_request: int = 24  # pool before the exposure filter (<= synth.pairs_per_query)
    exposed_rsl4_share: float = 0.8  # paper: ~80% of exposed items are rsl 4
    position_bias_power: float = 0.7  # P(examine | pos) = 1 / pos^power
    target_ctr: float = 0.08  # the platform CTR the paper uses for truncation
    user_topic_affinity: float = 0.6  # share of a user's searches in their favourite categories
    max_favourite_categories: int = 3  # each user has 1..this many favourite categories
    # spread (sd on the logit scale) of per-item attractiveness, per-brand effect, per-user bias
    item_attractiveness_sd: float = 0.5
    brand_effect_sd: float = 0.3
    user_bias_sd: float = 0.3
    # logit change per unit of log-price (centred), by user segment: bargain, casual, premium, enthusiast
    price_slope_by_segment: list[float] = field(default_factory=lambda: [-0.8, -0.3, 0.3, 0.0])
    seed: int = 0
    # query_types: sensitivity also varies by fine-grained query type, plus exploration slates;
    # classic: the original world (every setting below is ignored; same output as before they existed)
    world: str = "query_types"
    queries_per_type: float = 4.0  # per category, k = max(1, round(n_queries / this)) TF-IDF KMeans types
    type_sensitivity_sd: float = 1.0  # static per-type sensitivity effect ~ N(0, this)
    # per-type random walk over days (step sd; 0 = static types): trends that only recent behaviours
    # reveal, so cross-user mining has information no id learned on the training days carries
    type_drift_sd: float = 0.3
    # multiplier of an item's appeal (attractiveness + brand effect) in the click logit for rsl 1, 2, 3, 4:
    # a popular but irrelevant item is not clicked for its popularity. The exposure policy rarely shows
    # such items, so a ranker trained on the exposed log over-scores them (what exposure debias targets)
    appeal_by_level: list[float] = field(default_factory=lambda: [0.1, 0.4, 1.0, 1.0])
    # weight of each candidate's true click logit in the exposure policy's selection keys (an upstream
    # ranker that knew more than the logged features): exposed items are selected on click drivers a
    # ranker trained on the log cannot see, the bias exposure debias exists for. 0 = classic keys
    exposure_ctr_weight: float = 1.0
    random_slate_share: float = 0.05  # share of requests shown a uniformly random slate (exploration)


@dataclass
class HistoryConfig:
    """User history and cross-user sequences (PRECTR-V2 cold-start mining)."""

    max_user_history: int = 50  # m: last m behaviours strictly before the impression
    top_users_per_category: int = 50  # paper: 50 most active users per category
    cross_user_k: int = 50  # top-k behaviours of those users by query similarity
    similarity: str = "token_overlap"  # token_overlap | embedder (rag stage)
    # impression: every impression (shown and skipped, with its click flag) is a behaviour, so a sequence
    # carries click *rates* (how often similar queries' exact matches were clicked lately), which
    # clicks alone cannot; 50 impressions are ~5 slates | click: clicked impressions only (the paper's log)
    behaviour: str = "impression"
    chunk_requests: int = 4096  # requests scored at once for the cross-user top-k (memory bound)


@dataclass
class DataConfig:
    synth: SynthConfig = field(default_factory=SynthConfig)
    ingest: ImportConfig = field(default_factory=ImportConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    simulate: SimulateConfig = field(default_factory=SimulateConfig)
    history: HistoryConfig = field(default_factory=HistoryConfig)
