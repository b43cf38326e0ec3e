"""Column contracts of the two tables every stage reads: pairs and events (DESIGN.md section 3).

Ids are strings so that imported catalogues keep their own ids; labels are small ints. Extra
columns are allowed (kept as they are); missing required ones are an error naming the column.
"""

from __future__ import annotations

import pyarrow as pa

SPLITS = ("train", "valid", "test")
RSL_NAMES = {1: "irrelevant", 2: "complement", 3: "substitute", 4: "exact"}

PAIRS_SCHEMA = pa.schema(
    [
        pa.field("pair_id", pa.string(), nullable=False),
        pa.field("query", pa.string(), nullable=False),
        pa.field("item_id", pa.string(), nullable=False),
        pa.field("item_text", pa.string(), nullable=False),
        pa.field("rsl", pa.int8(), nullable=True),  # 1..4, null = unlabelled
        pa.field("category", pa.string(), nullable=False),
        pa.field("split", pa.string(), nullable=False),
    ]
)

# Sparse feature columns in events start with this prefix (hashed into embeddings by the ranker).
SPARSE_PREFIX = "f_"
# Numeric feature columns in events start with this prefix.
NUMERIC_PREFIX = "n_"

EVENTS_SCHEMA = pa.schema(
    [
        pa.field("request_id", pa.string(), nullable=False),
        pa.field("user_id", pa.string(), nullable=False),
        pa.field("ts", pa.int64(), nullable=False),
        pa.field("query", pa.string(), nullable=False),
        pa.field("category", pa.string(), nullable=False),
        pa.field("item_id", pa.string(), nullable=False),
        pa.field("pair_id", pa.string(), nullable=False),
        pa.field("position", pa.int16(), nullable=False),
        pa.field("click", pa.int8(), nullable=False),
        pa.field("rsl", pa.int8(), nullable=True),
    ]
)


def missing_columns(names: list[str] | tuple[str, ...], schema: pa.Schema) -> list[str]:
    return [f.name for f in schema if f.name not in names]


def conform(table: pa.Table, schema: pa.Schema, what: str) -> pa.Table:
    """Cast the required columns to the contract's types, keep extra columns after them."""
    missing = missing_columns(table.column_names, schema)
    if missing:
        raise ValueError(f"{what}: missing required column(s) {missing}; present: {table.column_names}")
    cols, fields = [], []
    for f in schema:
        cols.append(table.column(f.name).cast(f.type))
        fields.append(f)
    for name in table.column_names:
        if name not in schema.names:
            cols.append(table.column(name))
            fields.append(table.schema.field(name))
    return pa.Table.from_arrays(cols, schema=pa.schema(fields))
