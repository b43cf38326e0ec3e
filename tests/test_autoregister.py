import subprocess
import sys


def _run(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout


def test_import_llm2ctr_does_not_import_torch():
    assert _run("import sys, llm2ctr; print('torch' in sys.modules)").strip() == "False"


def test_automodel_knows_the_student_after_import_llm2ctr():
    for order in ("import llm2ctr\nfrom transformers import AutoConfig, AutoModel",
                  "from transformers import AutoConfig, AutoModel\nimport llm2ctr"):
        code = order + (
            "\nfrom llm2ctr.student.modeling import LightweightEncoderConfig\n"
            "cfg = AutoConfig.for_model('llm2ctr-lightweight-encoder', vocab_size=100)\n"
            "m = AutoModel.from_config(cfg)\n"
            "print(type(m).__name__)"
        )
        assert _run(code).strip().endswith("LightweightEncoderModel")


def test_cli_help_does_not_import_torch():
    code = "import sys\nfrom llm2ctr.cli import build_parser\nbuild_parser()\nprint('torch' in sys.modules)"
    assert _run(code).strip() == "False"
