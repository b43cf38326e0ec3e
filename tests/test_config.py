from pathlib import Path

import pytest

from llm2ctr.config import ConfigError, config_hash, load_config


def test_defaults_are_paper_values():
    cfg = load_config()
    # the paper's Adam 1e-4 at batch 4096 trains ~25 steps an epoch on a 100k-impression log and
    # nothing learns; the default trains (tests/ctr/test_real_pairs_recipe.py), documented in CtrConfig
    assert (cfg.ctr.lr, cfg.ctr.batch_size) == (2e-3, 1024)
    assert cfg.ctr.enc_lr_scale == 0.1
    assert cfg.ctr.debias_margin == 0.075
    assert cfg.ctr.debias_ctr_threshold == 0.08
    assert cfg.student.num_layers == 3
    assert cfg.data.history.top_users_per_category == 50


def test_yaml_then_overrides(tmp_path: Path):
    f = tmp_path / "c.yaml"
    f.write_text("workdir: runs/x\nstudent:\n  epochs: 7\n  lr: 0.002\n")
    cfg = load_config(f, ["student.epochs=9", "data.synth.label_mix=[1,1,1,1]"])
    assert cfg.workdir == "runs/x"
    assert cfg.student.epochs == 9
    assert cfg.student.lr == 0.002
    assert cfg.data.synth.label_mix == [1.0, 1.0, 1.0, 1.0]


def test_unknown_key_names_key_and_closest(tmp_path: Path):
    f = tmp_path / "c.yaml"
    f.write_text("student:\n  epochz: 3\n")
    with pytest.raises(ConfigError, match=r"unknown config key 'student.epochz'.*Did you mean 'epochs'"):
        load_config(f)
    with pytest.raises(ConfigError, match=r"'ctr.lrr'.*Did you mean 'lr'"):
        load_config(None, ["ctr.lrr=1"])


def test_bad_type_names_key():
    with pytest.raises(ConfigError, match="'student.epochs' expects an integer"):
        load_config(None, ["student.epochs=three"])
    with pytest.raises(ConfigError, match="not of the form key=value"):
        load_config(None, ["student.epochs"])


def test_config_hash_changes_with_values():
    a, b = load_config(), load_config(None, ["student.epochs=99"])
    assert config_hash(a.student) != config_hash(b.student)
    assert config_hash(a.data) == config_hash(b.data)


def test_dotted_override_into_a_dict_field_sets_one_entry(tmp_path: Path):
    f = tmp_path / "c.yaml"
    f.write_text("data:\n  ingest:\n    column_map: {item_text: product_title}\n    label_map: {E: 4}\n")
    cfg = load_config(f, ["data.ingest.column_map.query=search_term", "data.ingest.label_map.S=3",
                          "data.ingest.column_map.rsl=007"])
    assert cfg.data.ingest.column_map == {"item_text": "product_title", "query": "search_term", "rsl": "007"}
    assert cfg.data.ingest.label_map == {"E": 4, "S": 3}  # the value type (int) is applied
    cfg = load_config(f, ["data.ingest.column_map.item_text=title"])  # updates an entry
    assert cfg.data.ingest.column_map == {"item_text": "title"}
    assert load_config().data.ingest.column_map == {}  # the default dict is not shared


def test_dotted_override_into_a_dict_keeps_type_checks_and_clear_typos():
    with pytest.raises(ConfigError, match="'data.ingest.label_map.E' expects an integer, got 'x'"):
        load_config(None, ["data.ingest.label_map.E=x"])
    with pytest.raises(ConfigError, match=r"unknown config key 'data.ingest.colum_map' in section 'ImportConfig'. "
                                          r"Did you mean 'column_map'\? Valid keys: format, encoding, column_map"):
        load_config(None, ["data.ingest.colum_map.query=search_term"])
    with pytest.raises(ConfigError, match=r"'data.ingest.column_map.query' is a single str entry, not a mapping"):
        load_config(None, ["data.ingest.column_map.query.x=1"])
    with pytest.raises(ConfigError, match="'data.ingest.encoding' is a value, not a section"):
        load_config(None, ["data.ingest.encoding.x=1"])


def test_pipeline_run_command_line_sets_a_column_map_entry(tmp_path: Path):
    from llm2ctr.cli import build_parser
    from llm2ctr.cli.common import config_from_args

    f = tmp_path / "real.yaml"
    f.write_text("pipeline:\n  pairs_source: train.csv\ndata:\n  ingest:\n    column_map: {rsl: relevance}\n")
    args = build_parser().parse_args(["pipeline", "run", "--config", str(f),
                                      "data.ingest.column_map.query=search_term"])
    cfg = config_from_args(args)
    assert cfg.data.ingest.column_map == {"rsl": "relevance", "query": "search_term"}
    assert cfg.pipeline.pairs_source == "train.csv"
