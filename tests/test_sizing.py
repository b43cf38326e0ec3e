import pytest

from llm2ctr.cli import main
from llm2ctr.sizing import SizingInput, effective_tokens, gpu_hours


def test_gpu_hours_arithmetic():
    inp = SizingInput(pairs=1000, tokens_per_s=100.0, prompt_tokens=36, shared_prefix_tokens=30,
                      pairs_per_query=10, duplicate_share=0.5)
    assert effective_tokens(inp, dedupe=False, prefix_sharing=False) == 36_000
    assert effective_tokens(inp, dedupe=True, prefix_sharing=False) == 18_000
    # 6 unique tokens + 30 shared / 10 pairs = 9 tokens per pair
    assert effective_tokens(inp, dedupe=False, prefix_sharing=True) == 9_000
    assert gpu_hours(inp, dedupe=True, prefix_sharing=True) == pytest.approx(4_500 / 100 / 3600)


def test_invalid_inputs():
    with pytest.raises(ValueError, match="shared_prefix_tokens"):
        effective_tokens(SizingInput(prompt_tokens=10, shared_prefix_tokens=20), True, True)
    with pytest.raises(ValueError, match="duplicate_share"):
        effective_tokens(SizingInput(duplicate_share=1.0), True, True)


def test_cli_prints_table(capsys):
    assert main(["pipeline", "size", "--tokens-per-s", "1000", "--pairs", "3600000"]) == 0
    out = capsys.readouterr().out
    assert "| no | no |" in out and "| yes | yes |" in out
