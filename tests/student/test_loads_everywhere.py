"""The exported student loads with stock libraries in a Python that never imports llm2ctr.

Each check runs a subprocess in which ``import llm2ctr`` is made impossible, loads the export
folder with sentence-transformers / transformers / onnxruntime only, and prints vectors that are
compared here with our own encoder on the same inputs.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import torch

from llm2ctr.student.artifact import load_student
from llm2ctr.student.tokenization import encode_pairs, pair_text

QUERIES = ["acme red boot", "kappa mug", "zenit blue lamp"]
ITEMS = ["acme red boot new", "orbo blue lamp sale eco", "zenit blue lamp classic"]
SINGLE = ["acme red boot", "blue wallet from kappa"]
NO_LLM2CTR = "import sys\nsys.modules['llm2ctr'] = None  # any import of llm2ctr now fails\n"


def _run_without_llm2ctr(code: str, *args: str) -> dict:
    body = NO_LLM2CTR + textwrap.dedent(code) + "\nassert not any(m.startswith('llm2ctr.') for m in sys.modules)\n"
    p = subprocess.run([sys.executable, "-c", body, *args], capture_output=True, text=True, timeout=300,
                       env={"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PATH": "/usr/bin:/bin",
                            "TOKENIZERS_PARALLELISM": "false"})
    assert p.returncode == 0, p.stderr[-4000:]
    return json.loads(p.stdout.strip().splitlines()[-1])


def _ours(folder):
    model, tok = load_student(folder)
    pairs = encode_pairs(tok, QUERIES, ITEMS, 16)
    single = tok(SINGLE, padding=True, return_tensors="pt")
    with torch.no_grad():
        out = model(**pairs)
        single_vec = model.encode(**single)
    return model, tok, pairs, out, single_vec


def test_sentence_transformers_gives_the_students_vectors_and_the_teacher_space(exported_student):
    _, folder = exported_student
    got = _run_without_llm2ctr("""
        import json, sys
        from sentence_transformers import SentenceTransformer
        from sentence_transformers.models import Dense
        path, texts, single = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
        m = SentenceTransformer(path, device="cpu")
        pairs = m.encode(texts).tolist()
        one = m.encode(single).tolist()
        m.append(Dense.load(path, subfolder="teacher_projection"))
        print(json.dumps({"pairs": pairs, "single": one, "teacher": m.encode(texts).tolist()}))
    """, str(folder), json.dumps([pair_text(q, i) for q, i in zip(QUERIES, ITEMS, strict=True)]), json.dumps(SINGLE))
    _, _, _, out, single_vec = _ours(folder)
    assert np.abs(np.array(got["pairs"]) - out.pooled.numpy()).max() <= 1e-5
    assert np.abs(np.array(got["single"]) - single_vec.numpy()).max() <= 1e-5
    assert np.abs(np.array(got["teacher"]) - out.projection.numpy()).max() <= 1e-5


def test_transformers_alone_gives_the_relevance_logits_and_labels(exported_student):
    _, folder = exported_student
    got = _run_without_llm2ctr("""
        import json, sys, torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer
        path, texts = sys.argv[1], json.loads(sys.argv[2])
        tok = AutoTokenizer.from_pretrained(path, subfolder="relevance")
        clf = AutoModelForSequenceClassification.from_pretrained(path, subfolder="relevance").eval()
        enc = tok(texts, padding=True, return_tensors="pt")
        with torch.no_grad():
            logits = clf(**enc).logits
        print(json.dumps({"logits": logits.tolist(), "ids": enc["input_ids"].tolist(),
                          "types": enc["token_type_ids"].tolist(), "model_type": clf.config.model_type,
                          "labels": [clf.config.id2label[i] for i in range(clf.config.num_labels)]}))
    """, str(folder), json.dumps([pair_text(q, i) for q, i in zip(QUERIES, ITEMS, strict=True)]))
    _, _, pairs, out, _ = _ours(folder)
    assert got["model_type"] == "bert"
    assert got["labels"] == ["1:irrelevant", "2:complement", "3:substitute", "4:exact"]
    # the single string "query [SEP] item" tokenizes exactly like our pair encoding (one segment)
    assert got["ids"] == pairs["input_ids"].tolist() and not any(any(r) for r in got["types"])
    assert np.abs(np.array(got["logits"]) - out.logits.numpy()).max() <= 1e-5


def test_onnx_runs_with_onnxruntime_alone_and_int8_costs_little(exported_student):
    cfg, folder = exported_student
    export = json.loads((folder / "export.json").read_text())
    assert export["onnx_parity"]["max_abs_diff_pooled"] < 1e-4 and export["onnx_parity"]["argmax_agreement"] == 1.0
    assert export["macro_f1"]["onnx_fp32"] == export["macro_f1"]["pytorch"]
    assert export["int8_parity"]["pooled_cosine_mean"] > 0.99
    assert set(export["macro_f1"]) == {"pytorch", "onnx_fp32", "onnx_int8"} and "int8_macro_f1_cost" in export
    got = _run_without_llm2ctr("""
        import json, sys
        import onnxruntime as ort
        from transformers import AutoTokenizer
        path, texts = sys.argv[1], json.loads(sys.argv[2])
        tok = AutoTokenizer.from_pretrained(path)
        enc = tok(texts, padding=True, return_tensors="np")
        sess = ort.InferenceSession(path + "/onnx/model.onnx", providers=["CPUExecutionProvider"])
        feeds = {k: enc[k].astype("int64") for k in ("input_ids", "token_type_ids", "attention_mask")}
        pooled, logits, projection = sess.run(["pooled", "logits", "projection"], feeds)
        print(json.dumps({"pooled": pooled.tolist(), "logits": logits.tolist()}))
    """, str(folder), json.dumps([pair_text(q, i) for q, i in zip(QUERIES, ITEMS, strict=True)]))
    _, _, _, out, _ = _ours(folder)
    assert np.abs(np.array(got["pooled"]) - out.pooled.numpy()).max() <= 1e-4
    assert np.abs(np.array(got["logits"]) - out.logits.numpy()).max() <= 1e-4


def test_export_folder_is_what_push_uploads_with_a_stock_card(exported_student, capsys, monkeypatch):
    from llm2ctr.cli import main

    cfg, folder = exported_student
    monkeypatch.setenv("HF_TOKEN", "hf_secret_value_123")
    assert main(["student", "push", "--repo-id", "me/student", "--dry-run", f"workdir={cfg.workdir}"]) == 0
    out = capsys.readouterr()
    listed = sorted(line.strip() for line in out.out.splitlines()[1:] if line.strip())
    on_disk = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert listed == on_disk and "hf_secret_value_123" not in out.out + out.err
    for f in ("config.json", "model.safetensors", "modules.json", "1_Pooling/config.json", "relevance/config.json",
              "teacher_projection/model.safetensors", "onnx/model.onnx", "onnx/model_int8.onnx", "README.md"):
        assert f in listed
    card = (folder / "README.md").read_text()
    assert "SentenceTransformer(path)" in card and 'subfolder="relevance"' in card and "import llm2ctr" not in card
