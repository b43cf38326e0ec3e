"""The CLI end to end: tokenizer -> train -> eval -> push --dry-run, and a fresh process loads the model."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from llm2ctr.cli import main

ARGS = ["student.vocab_size=200", "student.d_model=32", "student.num_layers=1", "student.num_heads=2",
        "student.ffn_dim=64", "student.max_length=16", "student.batch_size=32", "student.epochs=1"]

FRESH = """
import sys, json, torch
import llm2ctr
from transformers import AutoModel, AutoTokenizer
from llm2ctr.student.tokenization import encode_pairs
d = sys.argv[1]
m = AutoModel.from_pretrained(d).eval()
tok = AutoTokenizer.from_pretrained(d)
b = encode_pairs(tok, ["acme red boot", "kappa mug"], ["acme red boot new", "orbo blue lamp sale eco"], 16)
with torch.no_grad():
    print(json.dumps({"type": type(m).__name__, "vec": m.encode(**b).tolist()}))
"""


@pytest.fixture(scope="module")
def cli_world(world, tmp_path_factory) -> Path:
    wd = tmp_path_factory.mktemp("cli") / "w"
    shutil.copytree(world, wd)
    shutil.rmtree(wd / "student" / "tokenizer")
    assert main(["student", "tokenizer", f"workdir={wd}", *ARGS]) == 0
    assert main(["student", "train", f"workdir={wd}", *ARGS]) == 0
    return wd


def test_trained_folder_loads_in_a_fresh_process(cli_world):
    import json

    import torch

    from llm2ctr.student.jobs import load_student
    from llm2ctr.student.tokenization import encode_pairs

    d = cli_world / "student" / "model"
    p = subprocess.run([sys.executable, "-c", FRESH, str(d)], capture_output=True, text=True, timeout=120,
                       env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"})
    assert p.returncode == 0, p.stderr[-3000:]
    got = json.loads(p.stdout.strip().splitlines()[-1])
    assert got["type"] == "LightweightEncoderModel"
    model, tok = load_student(d)
    b = encode_pairs(tok, ["acme red boot", "kappa mug"], ["acme red boot new", "orbo blue lamp sale eco"], 16)
    with torch.no_grad():
        ref = model.encode(**b)
    assert torch.equal(torch.tensor(got["vec"]), ref)


def test_eval_prints_the_table(cli_world, capsys):
    assert main(["student", "eval", f"workdir={cli_world}", *ARGS]) == 0
    out = capsys.readouterr().out
    assert "| model |" in out and "| sft+mse |" in out and "| teacher probe |" in out


def test_push_dry_run_lists_files_and_never_the_token(cli_world, capsys, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_secret_value_123")
    assert main(["student", "push", "--repo-id", "me/student", "--private", "--dry-run", f"workdir={cli_world}"]) == 0
    out = capsys.readouterr()
    for f in ("config.json", "model.safetensors", "tokenizer.json", "README.md", "manifest.json"):
        assert f in out.out
    assert "private" in out.out and "hf_secret_value_123" not in out.out + out.err


def test_push_without_token_is_a_clear_error(cli_world, capsys, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    assert main(["student", "push", "--repo-id", "me/student", f"workdir={cli_world}"]) == 2
    assert "HF_TOKEN" in capsys.readouterr().err


def test_missing_tokenizer_names_the_path(tmp_path, capsys):
    assert main(["student", "train", f"workdir={tmp_path}"]) == 2
    assert str(tmp_path / "student" / "tokenizer") in capsys.readouterr().err
