"""Typed configuration: dataclasses with the paper's defaults, a YAML file, ``key=value`` overrides.

Every stage owns its dataclass (``llm2ctr/<stage>/config.py``); this module composes them into
one :class:`Config` and does the loading. Unknown keys are errors that name the key and the
closest valid one, because a silently ignored typo in a training config costs a day of GPU time.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from llm2ctr.ctr.config import CtrConfig
from llm2ctr.data.config import DataConfig
from llm2ctr.errors import ConfigError  # defined with the error vocabulary; importable here as before
from llm2ctr.rag.config import RagConfig
from llm2ctr.student.config import StudentConfig
from llm2ctr.teacher.config import TeacherConfig


@dataclass
class PipelineConfig:
    """What ``llm2ctr pipeline run`` does. Stages run in order; an up-to-date stage is skipped."""

    # a user's labelled pairs file (csv/tsv/parquet/jsonl/HF folder); empty = synthetic catalogue
    pairs_source: str = ""
    # empty = every stage; otherwise a subset of llm2ctr.pipeline.STAGE_NAMES, in any order
    stages: list[str] = field(default_factory=list)
    # re-run stages even when their inputs and config are unchanged
    force: bool = False
    # student variants trained (each for student.eval_seeds seeds) for the distillation table; student.variant,
    # the one the ranker uses, is always trained
    student_variants: list[str] = field(default_factory=lambda: ["sft", "mse", "sft+mse"])
    # embed the bare pairs with the teacher (no retrieved examples) for the table's plain teacher probe
    teacher_plain: bool = True
    # build unlabelled distillation pairs and embed them with the teacher before student training
    distill_pairs: bool = False
    # ranker models trained for the report; empty = the ranker stage's default suite
    ctr_models: list[str] = field(default_factory=list)


@dataclass
class Config:
    """The whole pipeline. ``workdir`` holds every stage's artifact directory."""

    workdir: str = "runs/quickstart"
    seed: int = 0
    # independent training jobs run side by side (student seeds and variants, ranker models x seeds),
    # each in its own process on student.num_threads / ctr.num_threads threads; 0 = one per CPU core.
    # How the work is organised, not what is learned: no stage's config hash includes it.
    workers: int = 1
    data: DataConfig = field(default_factory=DataConfig)
    rag: RagConfig = field(default_factory=RagConfig)
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    student: StudentConfig = field(default_factory=StudentConfig)
    ctr: CtrConfig = field(default_factory=CtrConfig)
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)

    def stage_dir(self, *parts: str) -> Path:
        return Path(self.workdir).joinpath(*parts)


def _valid_keys(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def _resolve_type(owner: type, name: str) -> Any:
    hints = typing.get_type_hints(owner)
    return hints[name]


def _unknown_key_error(key: str, owner: type, where: str) -> ConfigError:
    valid = _valid_keys(owner)
    close = difflib.get_close_matches(key.rsplit(".", 1)[-1], valid, n=1, cutoff=0.5)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    return ConfigError(
        f"{where}: unknown config key '{key}' in section '{owner.__name__}'.{hint} "
        f"Valid keys: {', '.join(valid)}"
    )


def _coerce(value: Any, tp: Any, key: str, where: str) -> Any:
    """Convert a YAML/CLI value to the annotated type, or raise a ConfigError that names the key."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        if isinstance(value, str) and value.lower() in ("none", "null") and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"{where}: bad value for '{key}'")
    if origin in (list, tuple):
        if isinstance(value, str):
            value = yaml.safe_load(value) if value.strip().startswith("[") else [
                v for v in value.split(",") if v != ""
            ]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: '{key}' expects a list, got {value!r}")
        inner = args[0] if args else Any
        items = [_coerce(v, inner, key, where) for v in value]
        return items if origin is list else tuple(items)
    if origin is dict:
        if isinstance(value, str):
            value = yaml.safe_load(value)
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: '{key}' expects a mapping, got {value!r}")
        return dict(value)
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "yes", "1", "on"):
            return True
        if isinstance(value, str) and value.lower() in ("false", "no", "0", "off"):
            return False
        raise ConfigError(f"{where}: '{key}' expects true/false, got {value!r}")
    if tp is int:
        if isinstance(value, bool):
            raise ConfigError(f"{where}: '{key}' expects an integer, got {value!r}")
        try:
            f = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: '{key}' expects an integer, got {value!r}") from None
        if not f.is_integer():
            raise ConfigError(f"{where}: '{key}' expects an integer, got {value!r}")
        return int(f)
    if tp is float:
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: '{key}' expects a number, got {value!r}") from None
    if tp is str:
        if isinstance(value, (dict, list)):
            raise ConfigError(f"{where}: '{key}' expects a string, got {value!r}")
        return str(value)
    return value


def _apply_mapping(obj: Any, mapping: dict[str, Any], where: str, prefix: str = "") -> None:
    for key, value in mapping.items():
        owner = type(obj)
        if key not in _valid_keys(owner):
            raise _unknown_key_error(prefix + key, owner, where)
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise ConfigError(f"{where}: '{prefix + key}' is a section; expected a mapping, got {value!r}")
            _apply_mapping(current, value, where, prefix + key + ".")
        else:
            setattr(obj, key, _coerce(value, _resolve_type(owner, key), prefix + key, where))


def _parse_raw(raw: str, tp: Any) -> Any:
    """The override text as YAML, except that a string-typed key keeps digits as written ('007')."""
    value = yaml.safe_load(raw) if raw != "" else ""
    return raw if isinstance(value, (int, float)) and tp is str else value


def _dict_type(tp: Any) -> tuple[Any, Any] | None:
    """``(key type, value type)`` when ``tp`` is a dict (or an optional dict), else None."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        tp = next((a for a in typing.get_args(tp) if typing.get_origin(a) is dict or a is dict), tp)
    if tp is not dict and typing.get_origin(tp) is not dict:
        return None
    args = typing.get_args(tp)
    return (args[0], args[1]) if len(args) == 2 else (Any, Any)


def _set_dict_entry(obj: Any, field_name: str, tp: Any, prefix: str, keys: list[str], raw: str, where: str) -> None:
    """``field.k1.k2=value``: set one entry of a dict-valued field, keeping the others.

    The entry is checked against the dict's value type (``label_map.E=x`` fails for ``dict[str, int]``);
    deeper keys walk into nested mappings, creating them as needed.
    """
    dotted = ".".join([prefix, *keys])
    key_type, value_type = _dict_type(tp) or (Any, Any)
    if len(keys) > 1 and value_type is not Any and _dict_type(value_type) is None:
        raise ConfigError(f"{where}: '{prefix}.{keys[0]}' is a single {getattr(value_type, '__name__', value_type)} "
                          f"entry, not a mapping; cannot set '{dotted}'")
    current = getattr(obj, field_name)
    mapping = dict(current) if isinstance(current, dict) else {}
    node = mapping
    for depth, key in enumerate(keys[:-1]):
        child = node.get(key)
        if child is None:
            child = node[key] = {}
        elif not isinstance(child, dict):
            inner = ".".join([prefix, *keys[: depth + 1]])
            raise ConfigError(f"{where}: '{inner}' is a value ({child!r}), not a mapping; cannot set '{dotted}'")
        else:
            child = node[key] = dict(child)
        node = child
    tp_leaf = value_type if len(keys) == 1 else Any
    key = keys[-1] if key_type is str or key_type is Any else _coerce(keys[-1], key_type, dotted, where)
    node[key] = _coerce(_parse_raw(raw, tp_leaf), tp_leaf, dotted, where)
    setattr(obj, field_name, mapping)


def apply_override(cfg: Any, dotted: str, raw: str, where: str = "command line") -> None:
    """Apply one ``a.b.c=value`` override; the value is parsed as YAML (so 1e-4, true, [1,2] work).

    A key below a dict-valued field sets one entry: ``data.ingest.column_map.query=search_term``.
    """
    parts = dotted.split(".")
    obj = cfg
    for i, part in enumerate(parts):
        owner = type(obj)
        if part not in _valid_keys(owner):
            raise _unknown_key_error(".".join(parts[: i + 1]), owner, where)
        tp = _resolve_type(owner, part)
        if i == len(parts) - 1:
            current = getattr(obj, part)
            if dataclasses.is_dataclass(current):
                raise ConfigError(f"{where}: '{dotted}' is a section, not a value; set one of its keys")
            setattr(obj, part, _coerce(_parse_raw(raw, tp), tp, dotted, where))
        elif _dict_type(tp) is not None and not dataclasses.is_dataclass(getattr(obj, part)):
            if any(k == "" for k in parts[i + 1:]):
                raise ConfigError(f"{where}: '{dotted}' has an empty key; expected e.g. "
                                  f"{'.'.join(parts[: i + 1])}.KEY=value")
            _set_dict_entry(obj, part, tp, ".".join(parts[: i + 1]), parts[i + 1:], raw, where)
            return
        else:
            obj = getattr(obj, part)
            if not dataclasses.is_dataclass(obj):
                raise ConfigError(f"{where}: '{'.'.join(parts[: i + 1])}' is a value, not a section")


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """Build a :class:`Config` from defaults, an optional YAML file, then ``key=value`` overrides."""
    cfg = Config()
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file not found: {p}")
        try:
            data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{p}: not valid YAML: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{p}: the top level must be a mapping of sections, got {type(data).__name__}")
        _apply_mapping(cfg, data, str(p))
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"override '{item}' is not of the form key=value (e.g. student.epochs=3)")
        key, raw = item.split("=", 1)
        apply_override(cfg, key.strip(), raw.strip())
    return cfg


def config_hash(section: Any) -> str:
    """Stable short hash of a config (section), used to decide whether a stage must re-run."""
    blob = json.dumps(dataclasses.asdict(section), sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]
