"""CLI verbs: help text, and user errors turned into one clear message with exit code 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from llm2ctr.cli import main
from llm2ctr.data.store import save_table

from .conftest import make_pairs


@pytest.mark.parametrize("verb", ["embed", "merge", "adapt", "build-tiny"])
def test_every_verb_has_help(verb: str, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["teacher", verb, "--help"])
    assert exc.value.code == 0 and "--config" in capsys.readouterr().out


def test_missing_neighbours_says_what_to_run(tmp_path: Path, capsys):
    save_table(make_pairs(10), tmp_path / "data" / "pairs", kind="pairs", stage="test")
    assert main(["teacher", "embed", f"workdir={tmp_path}", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "rag/neighbours" in err and "llm2ctr rag neighbours" in err and "teacher.use_rag=false" in err
    assert main(["teacher", "embed", f"workdir={tmp_path}", "teacher.use_rag=false", "teacher.backend=nope"]) == 2
    assert "unknown backend 'nope'" in capsys.readouterr().err
    assert main(["teacher", "embed", f"workdir={tmp_path}", "teacher.use_rag=false", "--shard", "3/2"]) == 2
    assert "--shard expects i/n" in capsys.readouterr().err
    assert main(["teacher", "merge", f"workdir={tmp_path}"]) == 2
    assert "no parts to merge" in capsys.readouterr().err
