"""Label mapping: each scale's rule, auto-detection, and per-row problems as masks."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from llm2ctr.data.labels import LabelConfigError, map_labels, parse_label_map


def levels(values, **kw):
    res = map_labels(pa.array(values), **kw)
    return res.rsl.tolist(), res


def test_esci_letters_and_words_case_insensitive():
    got, res = levels(["E", "s", "C", "I", "Exact", "substitute", "COMPLEMENT", "Irrelevant"])
    assert got == [4, 3, 2, 1, 4, 3, 2, 1]
    assert res.scale == "esci" and not res.problems


def test_esci_unknown_letter_is_unparsable():
    got, res = levels(["E", "X", "I"], scale="esci")
    assert got == [4, 0, 1]
    assert res.problems["label_unparsable"].tolist() == [False, True, False]


def test_integers_1_to_4_kept_and_out_of_range_flagged():
    got, res = levels(["1", "2", "3", "4", "9", "-1", "2.5"] + ["3"] * 30)
    assert res.scale == "int"  # one fractional value in 37 is a typo, not a continuous scale
    assert got[:7] == [1, 2, 3, 4, 0, 0, 0]
    assert res.problems["label_out_of_range"][:7].tolist() == [False] * 4 + [True, True, False]
    assert res.problems["label_not_integer"][:7].tolist() == [False] * 6 + [True]


def test_integers_0_to_3_detected_and_shifted():
    got, res = levels([0, 1, 2, 3, 3])
    assert got == [1, 2, 3, 4, 4]
    assert res.value_range == [0, 3] and "0..3" in res.rule


def test_wider_integer_scale_needs_label_range_and_is_rescaled_linearly():
    got, res = levels([0, 5, 10, 3, 7], scale="int", label_range=[0, 10])
    # rsl = 1 + round_half_up(v * 3 / 10): 0 -> 1, 5 -> 1 + 1.5 -> 3, 10 -> 4, 3 -> 2, 7 -> 3
    assert got == [1, 3, 4, 2, 3]
    _, res = levels([0, 5, 10], scale="int")
    assert res.problems["label_out_of_range"].tolist() == [True, True, True]  # 1..4 assumed


def test_home_depot_continuous_bins():
    vals = [1.0, 1.33, 1.5, 1.67, 2.0, 2.33, 2.5, 2.67, 3.0]
    got, res = levels(vals)
    assert res.scale == "continuous"
    assert got == [1, 1, 2, 2, 3, 3, 4, 4, 4]


def test_continuous_range_check_and_infinity():
    _, res = levels(["1.2", "2.7", "7.5", "inf"], scale="continuous", label_range=[1, 3])
    assert res.problems["label_out_of_range"].tolist() == [False, False, True, True]


def test_explicit_map_and_missing_value():
    mapping = parse_label_map("good=4, ok=3,bad=1")
    got, res = levels(["good", "ok", "meh", "bad"], label_map=mapping)
    assert res.scale == "map" and got == [4, 3, 0, 1]
    assert res.problems["label_not_in_map"].tolist() == [False, False, True, False]


def test_map_keys_match_numbers_written_differently():
    got, _ = levels([0.0, 1.0, 2.0], label_map=parse_label_map({0: 1, 1: 3, 2: 4}))
    assert got == [1, 3, 4]


def test_empty_is_unlabelled_and_nan_is_a_problem():
    got, res = levels(["4", "", None, "NaN", " "])
    assert got == [4, 0, 0, 0, 0]
    assert res.unlabelled.tolist() == [False, True, True, False, True]
    assert res.problems["label_nan"].tolist() == [False, False, False, True, False]


def test_float_nan_in_a_numeric_column():
    _, res = levels(pa.array([1.0, float("nan"), None, 4.0]))
    assert res.problems["label_nan"].tolist() == [False, True, False, False]
    assert res.unlabelled.tolist() == [False, False, True, False]


def test_text_in_a_numeric_scale_is_unparsable():
    _, res = levels(["1", "2", "four", "4 stars"])
    assert np.flatnonzero(res.problems["label_unparsable"]).tolist() == [2, 3]


@pytest.mark.parametrize("spec, msg", [("E=5", "1..4"), ("E", "VALUE=LEVEL"), ("E=x", "1..4")])
def test_bad_label_map_spec(spec, msg):
    with pytest.raises(LabelConfigError, match=msg):
        parse_label_map(spec)


def test_bad_bins_and_range_are_config_errors():
    with pytest.raises(LabelConfigError, match="increasing"):
        map_labels(pa.array(["1.5"]), bins=[2.0, 1.0, 3.0])
    with pytest.raises(LabelConfigError, match="low < high"):
        map_labels(pa.array(["1"]), label_range=[4, 1])


# --- continuous scale: a range (default 1..3), values outside it are bad rows, bins must fit it ---


def test_continuous_default_range_rejects_values_outside_1_to_3():
    got, res = levels(["1.0", "3.0", "3.5", "0.5", "2.25"], scale="continuous")
    assert got == [1, 4, 0, 0, 3]  # 3.5 was binned as rsl 4 before the range existed
    assert res.problems["label_out_of_range"].tolist() == [False, False, True, True, False]
    assert res.value_range == [1.0, 3.0] and "[1, 3]" in res.rule


def test_auto_detected_continuous_scale_gets_the_range_too():
    got, res = levels([1.0, 1.33, 2.67, 3.0, 4.5])
    assert res.scale == "continuous" and got == [1, 1, 4, 4, 0]
    assert np.flatnonzero(res.problems["label_out_of_range"]).tolist() == [4]


def test_bins_must_lie_inside_the_continuous_range():
    with pytest.raises(LabelConfigError, match=r"continuous_bins \[0.25, 0.5, 0.75\] do not fit the default "
                                               r"continuous range .*\[1, 3\]: bin edge\(s\) \[0.25, 0.5, 0.75\]"):
        map_labels(pa.array(["0.3"]), scale="continuous", bins=[0.25, 0.5, 0.75])
    with pytest.raises(LabelConfigError, match=r"do not fit label_range \[1, 2\]: bin edge\(s\) \[2.5\]"):
        map_labels(pa.array(["1.5"]), scale="continuous", label_range=[1, 2])
    got, res = levels(["0.1", "0.3", "0.6", "0.9", "1.2"], scale="continuous", bins=[0.25, 0.5, 0.75],
                      label_range=[0, 1])
    assert got == [1, 2, 3, 4, 0] and res.problems["label_out_of_range"].tolist() == [False] * 4 + [True]
    # an integer scale's range need not contain the (unused) continuous bins
    got, _ = levels(["0", "1"], scale="int", label_range=[0, 1])
    assert got == [1, 4]


def test_import_reports_an_out_of_range_continuous_label_as_a_bad_row(tmp_path, cfg, csv_writer):
    from llm2ctr.data.ingest import BadRowsError, run_import
    from llm2ctr.data.store import load_pairs

    body = [[f"q{i}", f"item {i}", v] for i, v in enumerate([1.0, 1.67, 3.5, 2.33, 3.0], 1)]
    src = csv_writer(tmp_path / "hd.csv", ["query", "item_text", "relevance"], body)
    cfg.data.ingest.label_scale = "continuous"
    with pytest.raises(BadRowsError) as err:
        run_import(cfg, src)
    msg = str(err.value)
    assert "1 of 5 rows are bad" in msg and "label_out_of_range: 1 rows" in msg
    assert "hd.csv row 3, column 'relevance', value '3.5': label outside the scale; expected a number in [1, 3]" in msg
    cfg.data.ingest.on_bad_rows = "skip"
    summary = run_import(cfg, src, tmp_path / "out")
    assert summary["rejected_by_reason"] == {"label_out_of_range": 1} and summary["kept"] == 4
    assert sorted(load_pairs(summary["out"]).column("rsl").to_pylist()) == [1, 2, 3, 4]
    rejects = (tmp_path / "out_rejects.csv").read_text().splitlines()
    assert rejects[1].startswith("hd.csv,3,relevance,3.5,label_out_of_range,")
    cfg.data.ingest.label_range = [1, 4]  # the bins fit 1..4 too: 3.5 is now a 4
    assert run_import(cfg, src, tmp_path / "out2")["rejected"] == 0


def test_bins_outside_the_range_fail_before_the_file_is_read(tmp_path, cfg):
    from llm2ctr.cli.common import UserError
    from llm2ctr.data.ingest import run_import

    cfg.data.ingest.label_scale = "continuous"
    cfg.data.ingest.continuous_bins = [0.25, 0.5, 0.75]
    with pytest.raises(UserError, match=r"data.ingest.continuous_bins .*do not fit"):
        run_import(cfg, tmp_path / "never_read.csv")  # a config error, not 'no such file'


def test_label_range_flag_on_data_import(tmp_path, csv_writer, capsys):
    import json

    from llm2ctr import cli

    body = [[f"q{i}", f"item {i}", v] for i, v in enumerate([0.5, 1.5, 2.5, 3.5, 4.5], 1)]
    src = csv_writer(tmp_path / "wide.csv", ["query", "item_text", "rsl"], body)
    base = ["data", "import", str(src), "--label-scale", "continuous", f"workdir={tmp_path / 'w'}"]
    assert cli.main([*base, "--rejects", str(tmp_path / "r.csv")]) == 2
    assert "label_out_of_range: 3 rows" in capsys.readouterr().err  # 0.5, 3.5, 4.5 outside 1..3
    assert cli.main([*base, "--label-range", "0,5"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["rejected"] == 0 and "in [0, 5]" in summary["label_rule"]
    assert cli.main([*base, "--label-range", "1..3"]) == 2
    assert "--label-range '1..3': expected two numbers LOW,HIGH" in capsys.readouterr().err
    assert cli.main([*base, "--label-range", "2,2.2"]) == 2
    assert "bin edge(s) [1.5, 2.5]" in capsys.readouterr().err
