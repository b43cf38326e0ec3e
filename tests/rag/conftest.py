"""Fixtures of the rag tests: a small pairs artifact and a tiny real sentence-transformers model.

The pairs table has train/valid/test split by query, unlabelled rows, and duplicate pairs (same
query and item text up to case/whitespace, different pair_id) so the leakage guard has
something to refuse.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from llm2ctr.config import Config
from llm2ctr.data.store import save_table

CATEGORIES = {
    "shoes": ["running", "leather", "trail", "canvas", "hiking", "suede"],
    "phones": ["android", "camera", "battery", "unlocked", "compact", "dual"],
    "kitchen": ["knife", "skillet", "steel", "ceramic", "kettle", "grinder"],
    "toys": ["puzzle", "wooden", "plush", "robot", "blocks", "kite"],
}
COLOURS = ["red", "blue", "black", "green", "white", "grey", "pink", "brown"]


def make_pairs(queries_per_cat: int = 6, items_per_query: int = 8, seed: int = 0, dups: int = 12) -> pa.Table:
    """A pairs table (schema of llm2ctr.data.schema.PAIRS_SCHEMA) with known structure."""
    rng = np.random.default_rng(seed)
    cats = list(CATEGORIES)
    rows: dict[str, list] = {k: [] for k in ("pair_id", "query", "item_id", "item_text", "rsl", "category", "split")}
    qn = 0
    for cat, words in CATEGORIES.items():
        for j in range(queries_per_cat):
            word, colour = words[j % len(words)], COLOURS[(j + qn) % len(COLOURS)]
            query = f"{colour} {word} {cat}" + (f" {j}" if j >= len(words) else "")
            split = ("train", "train", "train", "valid", "test")[qn % 5]
            qn += 1
            for i in range(items_per_query):
                other = cats[(cats.index(cat) + i) % len(cats)] if i % 4 == 3 else cat
                w = CATEGORIES[other][int(rng.integers(len(words)))]
                c = COLOURS[int(rng.integers(len(COLOURS)))]
                text = f"{c} {w} {other} model {int(rng.integers(100))}"
                rsl = 1 if other != cat else (4 if w == word else (3 if c == colour else 2))
                if int(rng.integers(10)) == 0:
                    rsl = None
                rows["pair_id"].append(f"p{len(rows['pair_id']):04d}")
                rows["query"].append(query)
                rows["item_id"].append(f"i{len(rows['item_id']):04d}")
                rows["item_text"].append(text)
                rows["rsl"].append(rsl)
                rows["category"].append(cat)
                rows["split"].append(split)
    train = [i for i, s in enumerate(rows["split"]) if s == "train"]
    for d in range(dups):  # same query + item text up to case/whitespace, other id, maybe other label
        src = train[int(rng.integers(len(train)))]
        for key in rows:
            rows[key].append(rows[key][src])
        rows["pair_id"][-1] = f"dup{d:03d}"
        rows["item_id"][-1] = f"idup{d:03d}"
        rows["item_text"][-1] = "  " + rows["item_text"][src].upper().replace(" ", "   ")
        rows["rsl"][-1] = int(rng.integers(1, 5))
    return pa.table(
        {**{k: v for k, v in rows.items() if k != "rsl"}, "rsl": pa.array(rows["rsl"], pa.int8())}
    )


def write_pairs(table: pa.Table, directory: Path) -> Path:
    save_table(table, directory, kind="pairs", stage="tests.rag")
    return directory


@pytest.fixture(scope="session")
def tiny_st_model(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A 1-layer BERT (random weights, trained WordPiece vocab) saved as a sentence-transformers folder."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors, trainers
    from tokenizers.models import WordPiece
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    root = tmp_path_factory.mktemp("tiny_st")
    texts = make_pairs().column("item_text").to_pylist() + make_pairs().column("query").to_pylist()
    tok = Tokenizer(WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok.train_from_iterator(texts, trainers.WordPieceTrainer(vocab_size=300, special_tokens=special))
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))],
    )
    hf_tok = PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
        sep_token="[SEP]", mask_token="[MASK]", model_max_length=64,
    )
    torch.manual_seed(0)
    bert = BertModel(BertConfig(vocab_size=tok.get_vocab_size(), hidden_size=32, num_hidden_layers=1,
                                num_attention_heads=2, intermediate_size=64, max_position_embeddings=64))
    hf_dir = root / "hf"
    bert.save_pretrained(hf_dir)
    hf_tok.save_pretrained(hf_dir)
    word = Transformer(str(hf_dir), max_seq_length=64)
    st = SentenceTransformer(modules=[word, Pooling(word.get_embedding_dimension(), "mean")], device="cpu")
    st_dir = root / "st"
    st.save(str(st_dir))
    return str(st_dir)


@pytest.fixture()
def pairs_table() -> pa.Table:
    return make_pairs()


@pytest.fixture()
def workdir_cfg(tmp_path: Path, pairs_table: pa.Table, tiny_st_model: str) -> Config:
    """A Config whose workdir holds data/pairs and whose embedder is the tiny model."""
    cfg = Config(workdir=str(tmp_path / "run"))
    write_pairs(pairs_table, cfg.stage_dir("data", "pairs"))
    cfg.rag.embedder = tiny_st_model
    cfg.rag.batch_size = 16
    cfg.rag.chunk_size = 64
    return cfg


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    """OpenMP spin-waits make faiss and torch crawl (8x here) on an oversubscribed 2-core box."""
    import faiss
    import torch

    before = faiss.omp_get_max_threads(), torch.get_num_threads()
    faiss.omp_set_num_threads(1)
    torch.set_num_threads(1)
    yield
    faiss.omp_set_num_threads(before[0])
    torch.set_num_threads(before[1])
