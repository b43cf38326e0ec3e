"""The openai backend against a real loopback HTTP server that misbehaves on purpose."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from llm2ctr.teacher.backends import TeacherBackendError
from llm2ctr.teacher.backends.openai_http import OpenAIBackend
from llm2ctr.teacher.config import TeacherConfig


def _vector(text: str) -> list[float]:
    return [float(len(text)), float(sum(map(ord, text)) % 97), 1.0]


class Server:
    """Answers /v1/embeddings; ``script`` is a list of status codes (or "sleep") used one per request."""

    def __init__(self) -> None:
        self.script: list = []
        self.requests: list[dict] = []
        self.active = self.max_active = 0
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server API
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with outer.lock:
                    outer.requests.append({"body": body, "auth": self.headers.get("Authorization"),
                                           "path": self.path})
                    action = outer.script.pop(0) if outer.script else 200
                    outer.active += 1
                    outer.max_active = max(outer.max_active, outer.active)
                try:
                    if action == "sleep":
                        time.sleep(0.6)
                        action = 200
                    time.sleep(0.02)
                    if action != 200:
                        msg = json.dumps({"error": {"message": f"scripted {action}"}}).encode()
                        self.send_response(action)
                        if action == 429:
                            self.send_header("Retry-After", "0")
                        self.send_header("Content-Length", str(len(msg)))
                        self.end_headers()
                        self.wfile.write(msg)
                        return
                    data = [{"index": i, "embedding": _vector(t), "object": "embedding"}
                            for i, t in enumerate(body["input"])][::-1]  # out of order on purpose
                    out = json.dumps({"data": data, "usage": {"prompt_tokens": 3 * len(body["input"])}}).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(out)))
                    self.end_headers()
                    self.wfile.write(out)
                finally:
                    with outer.lock:
                        outer.active -= 1

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture
def server() -> Iterator[Server]:
    s = Server()
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()


def _backend(server: Server, **kw) -> OpenAIBackend:
    cfg = TeacherConfig(backend="openai", api_base=server.url, model="tiny", normalize=False, batch_size=8,
                        concurrency=3, backoff_s=0.01, max_retries=3, timeout_s=5.0, api_key_env="LLM2CTR_TEST_KEY")
    for k, v in kw.items():
        setattr(cfg, k, v)
    return OpenAIBackend(cfg)


def test_batches_in_order_with_bounded_concurrency(server: Server, monkeypatch):
    monkeypatch.setenv("LLM2CTR_TEST_KEY", "sk-secret-123")
    texts = [f"text number {i}" * (1 + i % 3) for i in range(50)]
    b = _backend(server)
    out = b.embed(texts)
    np.testing.assert_array_equal(out, np.asarray([_vector(t) for t in texts], np.float32))
    assert len(server.requests) == 7 and 1 <= server.max_active <= 3
    assert all(r["auth"] == "Bearer sk-secret-123" and r["body"]["model"] == "tiny" for r in server.requests)
    assert b.tokens_seen == 150
    assert server.requests[0]["body"]["truncate_prompt_tokens"] == 512
    assert server.requests[0]["body"]["truncation_side"] == "left"
    _backend(server, api_truncate=False).embed(["a"])
    assert "truncate_prompt_tokens" not in server.requests[-1]["body"]


def test_retries_429_and_5xx_then_succeeds(server: Server, monkeypatch, caplog):
    monkeypatch.setenv("LLM2CTR_TEST_KEY", "sk-secret-123")
    server.script = [429, 500, 503]
    b = _backend(server, concurrency=1)
    with caplog.at_level(logging.WARNING):
        out = b.embed(["a", "bb"])
    assert out.shape == (2, 3) and b.retries == 3 and len(server.requests) == 4
    assert "retry" in caplog.text and "sk-secret" not in caplog.text


def test_timeouts_are_retried(server: Server):
    server.script = ["sleep"]
    b = _backend(server, timeout_s=0.3, concurrency=1)
    assert b.embed(["x"]).shape == (1, 3) and b.retries == 1


def test_other_4xx_fails_at_once_with_the_server_message(server: Server, monkeypatch):
    monkeypatch.setenv("LLM2CTR_TEST_KEY", "sk-secret-123")
    server.script = [400]
    with pytest.raises(TeacherBackendError, match="HTTP 400.*scripted 400") as err:
        _backend(server, concurrency=1).embed(["a"])
    assert len(server.requests) == 1 and "sk-secret" not in str(err.value)
    server.script = [404]
    with pytest.raises(TeacherBackendError, match="HTTP 404 .check teacher.api_base"):
        _backend(server, concurrency=1).embed(["a"])


def test_gives_up_after_max_retries(server: Server):
    server.script = [503] * 10
    with pytest.raises(TeacherBackendError, match="gave up after 2 retries; last error: HTTP 503"):
        _backend(server, concurrency=1, max_retries=2).embed(["a"])
    assert len(server.requests) == 3


def test_normalises_when_asked(server: Server):
    out = _backend(server, normalize=True).embed(["abc", "de"])
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, rtol=1e-6)
