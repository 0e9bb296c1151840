"""Encoded answers kept per snapshot and request.

An answer read from one Iceberg snapshot never changes, so the encoded rows of a request (its
JSON rows, or its whole CSV, Arrow or Parquet body) can be kept under a key naming the snapshot
and every parameter that shapes the answer, and served again without reading or encoding
anything. What differs per request — the correlation id in the JSON envelope, the headers — is
added on each answer. The cache is bounded in bytes and evicts the least recently used answer.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass

from k2.obs.metrics import K2Metrics

CACHE = "answers"


@dataclass(frozen=True, slots=True)
class Answer:
    """Encoded rows and what the envelope says about them."""

    body: bytes | memoryview
    count: int
    snapshot_id: int | None = None
    next_cursor: str | None = None


class AnswerCache:
    """Answers by key, least recently used evicted past ``max_bytes``; safe across threads."""

    def __init__(self, max_bytes: int, metrics: K2Metrics) -> None:
        self.max_bytes = max_bytes
        self._metrics = metrics
        self._answers: OrderedDict[Hashable, Answer] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Answer | None:
        """The answer kept under ``key``, if any."""
        with self._lock:
            answer = self._answers.get(key)
            if answer is not None:
                self._answers.move_to_end(key)
        counter = self._metrics.query_cache_hits if answer is not None else self._metrics.query_cache_misses
        counter.labels(cache=CACHE).inc()
        return answer

    def put(self, key: Hashable, answer: Answer) -> None:
        """Keep ``answer`` under ``key`` (unless it alone exceeds the cache)."""
        size = len(answer.body)
        if size > self.max_bytes:
            return
        with self._lock:
            previous = self._answers.pop(key, None)
            if previous is not None:
                self._bytes -= len(previous.body)
            self._answers[key] = answer
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, evicted = self._answers.popitem(last=False)
                self._bytes -= len(evicted.body)
            held = self._bytes
        self._metrics.query_cache_bytes.labels(cache=CACHE).set(held)
