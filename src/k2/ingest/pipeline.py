"""Run iterators ahead of their consumer on worker threads, with bounded buffering.

Parsing (pyarrow, DuckDB) and writing (Parquet, zstd) release the GIL, so a source that works
on one thread while the loader writes on another, or two files parsed side by side, use both
cores. The queue between them is bounded, so memory stays flat however fast a side is.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from queue import Empty, Full, Queue
from typing import TypeVar

T = TypeVar("T")

_POLL_SECONDS = 0.1


class _Done:
    """Marks that one worker has no more items."""


def run_ahead(iterators: Sequence[Iterator[T]], *, workers: int = 1, depth: int = 2) -> Iterator[T]:
    """Yield every item of ``iterators``, drained by up to ``workers`` threads.

    Items of one iterator keep their order; items of different iterators interleave. At most
    ``depth`` items wait in the buffer. An exception raised by an iterator is re-raised here,
    and leaving the loop early stops the workers.
    """
    queue: Queue[T | BaseException | _Done] = Queue(maxsize=depth)
    stop = threading.Event()
    todo = list(iterators)
    lock = threading.Lock()

    def put(item: T | BaseException | _Done) -> bool:
        while not stop.is_set():
            try:
                queue.put(item, timeout=_POLL_SECONDS)
            except Full:
                continue
            return True
        return False

    def work() -> None:
        try:
            while True:
                with lock:
                    if not todo:
                        break
                    iterator = todo.pop(0)
                for item in iterator:
                    if not put(item):
                        return
        except BaseException as error:  # handed to the consumer, which re-raises it
            put(error)
            return
        put(_Done())

    threads = [
        threading.Thread(target=work, name=f"k2-ingest-{i}", daemon=True)
        for i in range(max(1, min(workers, len(todo))))
    ]
    for thread in threads:
        thread.start()
    finished = 0
    try:
        while finished < len(threads):
            try:
                item = queue.get(timeout=_POLL_SECONDS)
            except Empty:
                continue
            if isinstance(item, _Done):
                finished += 1
            elif isinstance(item, BaseException):
                raise item
            else:
                yield item
    finally:
        stop.set()
        for thread in threads:
            thread.join()
