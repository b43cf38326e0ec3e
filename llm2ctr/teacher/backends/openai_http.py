"""Client for an OpenAI-compatible ``/v1/embeddings`` endpoint (``vllm serve MODEL --runner pooling``).

Requests go out in batches of ``batch_size`` texts over at most ``concurrency`` connections.
429 and 5xx answers, timeouts and dropped connections are retried with exponential backoff and
jitter (a ``Retry-After`` header is honoured); any other 4xx is a configuration error (wrong model
name, bad key, prompt too long) and fails at once with the server's message. The API key is read
from the environment variable named by ``teacher.api_key_env`` and never logged or put in errors.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from llm2ctr.errors import TeacherBackendError
from llm2ctr.teacher.config import TeacherConfig

log = logging.getLogger(__name__)
MAX_BACKOFF_S = 30.0


def l2_normalize(x: np.ndarray) -> np.ndarray:
    """Rows to unit length (teacher.normalize), applied here to the vectors the server returns."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


class OpenAIBackend:
    """Batched, bounded-concurrency, retrying embeddings client."""

    name = "openai"

    def __init__(self, cfg: TeacherConfig, sleep=time.sleep) -> None:
        import httpx

        self.cfg, self.tokens_seen, self.retries = cfg, 0, 0
        self.url = cfg.api_base.rstrip("/") + "/embeddings"
        self.model_name = cfg.api_model or cfg.model
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(cfg.api_key_env, "") if cfg.api_key_env else ""
        if key:
            headers["Authorization"] = f"Bearer {key}"
        limits = httpx.Limits(max_connections=cfg.concurrency, max_keepalive_connections=cfg.concurrency)
        self.client = httpx.Client(headers=headers, timeout=cfg.timeout_s, limits=limits)
        self._sleep = sleep
        self._lock = threading.Lock()
        self._rng = random.Random(0)

    def _backoff(self, attempt: int, retry_after: str | None) -> float:
        if retry_after:
            try:
                return min(float(retry_after), MAX_BACKOFF_S)
            except ValueError:
                pass
        with self._lock:
            jitter = 0.5 + self._rng.random()
        return min(self.cfg.backoff_s * (2**attempt) * jitter, MAX_BACKOFF_S)

    def _post(self, batch: list[str]) -> tuple[np.ndarray, int]:
        import httpx

        body = {"model": self.model_name, "input": batch, "encoding_format": "float"}
        if self.cfg.api_truncate:  # vLLM extension: cut long prompts on the left, as the other backends do
            body |= {"truncate_prompt_tokens": self.cfg.max_model_len, "truncation_side": "left"}
        last = ""
        for attempt in range(self.cfg.max_retries + 1):
            retry_after = None
            try:
                resp = self.client.post(self.url, json=body)
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                last = f"{type(exc).__name__}: {exc}"
            else:
                if resp.status_code == 200:
                    return self._parse(resp, len(batch))
                if resp.status_code == 429 or resp.status_code >= 500:
                    last = f"HTTP {resp.status_code}: {resp.text[:300]}"
                    retry_after = resp.headers.get("retry-after")
                else:
                    hint = {401: " (check the key in the env var named by teacher.api_key_env)",
                            404: " (check teacher.api_base and teacher.api_model)"}.get(resp.status_code, "")
                    raise TeacherBackendError(
                        f"{self.url} answered HTTP {resp.status_code}{hint}: {resp.text[:500]}"
                    )
            if attempt == self.cfg.max_retries:
                break
            with self._lock:
                self.retries += 1
            delay = self._backoff(attempt, retry_after)
            log.warning("embeddings request failed (%s); retry %d/%d in %.2fs", last, attempt + 1,
                        self.cfg.max_retries, delay)
            self._sleep(delay)
        raise TeacherBackendError(f"{self.url}: gave up after {self.cfg.max_retries} retries; last error: {last}")

    def _parse(self, resp, n: int) -> tuple[np.ndarray, int]:
        try:
            payload = resp.json()
            data = sorted(payload["data"], key=lambda d: d["index"])
            vecs = np.asarray([d["embedding"] for d in data], dtype=np.float32)
        except (ValueError, KeyError, TypeError) as exc:
            raise TeacherBackendError(f"{self.url}: response is not an embeddings list ({exc})") from None
        if vecs.ndim != 2 or len(vecs) != n:
            raise TeacherBackendError(f"{self.url}: sent {n} inputs, got {len(data)} embeddings back")
        tokens = int((payload.get("usage") or {}).get("prompt_tokens") or 0)
        return vecs, tokens

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 0), np.float32)
        bs = self.cfg.batch_size
        batches = [texts[s:s + bs] for s in range(0, len(texts), bs)]
        with ThreadPoolExecutor(max_workers=max(1, self.cfg.concurrency)) as pool:
            results = list(pool.map(self._post, batches))
        self.tokens_seen += sum(t for _, t in results)
        out = np.concatenate([v for v, _ in results])
        return l2_normalize(out) if self.cfg.normalize else out

    def close(self) -> None:
        self.client.close()
