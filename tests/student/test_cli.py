"""The CLI end to end: tokenizer -> train -> eval -> push --dry-run (the stock loaders: test_loads_everywhere)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from llm2ctr.cli import main

ARGS = ["student.vocab_size=200", "student.d_model=32", "student.num_layers=1", "student.num_heads=2",
        "student.ffn_dim=64", "student.max_length=16", "student.batch_size=32", "student.epochs=1"]

@pytest.fixture(scope="module")
def cli_world(world, tmp_path_factory) -> Path:
    wd = tmp_path_factory.mktemp("cli") / "w"
    shutil.copytree(world, wd)
    shutil.rmtree(wd / "student" / "tokenizer")
    assert main(["student", "tokenizer", f"workdir={wd}", *ARGS]) == 0
    assert main(["student", "train", f"workdir={wd}", *ARGS]) == 0
    return wd


def test_eval_prints_the_table(cli_world, capsys):
    assert main(["student", "eval", f"workdir={cli_world}", *ARGS]) == 0
    out = capsys.readouterr().out
    for row in ("| model |", "| student sft+mse |", "| teacher probe (RAG prompt) |", "| TF-IDF + LR |"):
        assert row in out


def test_push_dry_run_lists_files_and_never_the_token(cli_world, capsys, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_secret_value_123")
    assert main(["student", "push", "--repo-id", "me/student", "--private", "--dry-run",
                 f"--folder={cli_world / 'student' / 'model'}", f"workdir={cli_world}"]) == 0
    out = capsys.readouterr()
    for f in ("config.json", "model.safetensors", "tokenizer.json", "README.md", "manifest.json"):
        assert f in out.out
    assert "private" in out.out and "hf_secret_value_123" not in out.out + out.err


def test_push_without_token_is_a_clear_error(cli_world, capsys, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    assert main(["student", "push", "--repo-id", "me/student", f"--folder={cli_world / 'student' / 'model'}",
                 f"workdir={cli_world}"]) == 2
    assert "HF_TOKEN" in capsys.readouterr().err


def test_push_before_export_says_to_export(cli_world, capsys):
    assert main(["student", "push", "--repo-id", "me/student", "--dry-run", f"workdir={cli_world}"]) == 2
    assert "llm2ctr student export" in capsys.readouterr().err


def test_missing_tokenizer_names_the_path(tmp_path, capsys):
    assert main(["student", "train", f"workdir={tmp_path}"]) == 2
    assert str(tmp_path / "student" / "tokenizer") in capsys.readouterr().err
