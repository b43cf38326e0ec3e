"""Data stage configuration (defaults give the quickstart's synthetic world)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class SynthConfig:
    """Synthetic catalogue and labelled query-item pairs (rule: exact 4, substitute 3, complement 2, irrelevant 1)."""

    n_categories: int = 24
    items_per_category: int = 400
    n_queries: int = 4000
    pairs_per_query: int = 10
    # share of pairs at rsl 4, 3, 2, 1 (normalised)
    label_mix: list[float] = field(default_factory=lambda: [0.45, 0.2, 0.15, 0.2])
    # share of pairs left unlabelled (rsl null) -- distillation can still use them
    unlabelled_share: float = 0.0
    seed: int = 0


@dataclass
class ImportConfig:
    """How ``data import`` reads a user's file. ``column_map`` maps our names to theirs."""

    format: str = "auto"  # auto | csv | tsv | parquet | jsonl | hf
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


@dataclass
class SplitConfig:
    """How pairs and events are split. Pairs split by query so no query is in two splits."""

    method: str = "query"  # pairs: random | query ; events: random | user | request | time
    valid_share: float = 0.1
    test_share: float = 0.1
    seed: int = 0


@dataclass
class SimulateConfig:
    """Click simulator (DESIGN.md section 5). Every parameter of the generating process is here."""

    n_users: int = 3000
    n_requests: int = 30000
    days: int = 9  # paper: 7 days train, 2 days test
    test_days: int = 2
    # heavy-tailed activity: Pareto shape; smaller = heavier tail, more cold-start users
    activity_alpha: float = 1.2
    # per-category mean relevance sensitivity and its spread across users
    sensitivity_mean_range: list[float] = field(default_factory=lambda: [0.5, 2.5])
    sensitivity_sd: float = 0.5
    slate_size: int = 10  # items exposed per request
    candidates_per_request: int = 20  # pool before the exposure filter
    exposed_rsl4_share: float = 0.8  # paper: ~80% of exposed items are rsl 4
    position_bias_power: float = 0.7  # P(examine | pos) = 1 / pos^power
    target_ctr: float = 0.08  # the platform CTR the paper uses for truncation
    user_topic_affinity: float = 0.6  # share of a user's searches in their favourite categories
    seed: int = 0


@dataclass
class HistoryConfig:
    """User history and cross-user sequences (PRECTR-V2 cold-start mining)."""

    max_user_history: int = 20  # m: last m behaviours strictly before the impression
    top_users_per_category: int = 50  # paper: 50 most active users per category
    cross_user_k: int = 20  # top-k behaviours of those users by query similarity
    similarity: str = "token_overlap"  # token_overlap | embedder (rag stage)


@dataclass
class DataConfig:
    synth: SynthConfig = field(default_factory=SynthConfig)
    ingest: ImportConfig = field(default_factory=ImportConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    simulate: SimulateConfig = field(default_factory=SimulateConfig)
    history: HistoryConfig = field(default_factory=HistoryConfig)
