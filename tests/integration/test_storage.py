"""The S3 store as DuckDB reads it: one file handle shared by several reading threads."""

from __future__ import annotations

import os
import random
import threading
import uuid

import pytest

from k2.lake.catalog import catalog_properties
from k2.lake.storage import file_system, object_store_files
from k2.settings import K2Settings

pytestmark = [pytest.mark.platform]


def test_a_shared_file_reads_the_right_bytes_from_many_threads(platform: K2Settings) -> None:
    """DuckDB reads a shared handle from several threads as seek-then-read; each thread gets the
    bytes at the position it sought, however the threads interleave."""
    properties = catalog_properties(platform)
    assert platform.lake.warehouse is not None
    s3, warehouse = file_system(platform.lake.warehouse, properties)
    path = f"{warehouse}/test-{uuid.uuid4().hex[:8]}.bin"
    data = os.urandom(2_000_000)
    with s3.open_output_stream(path) as out:
        out.write(data)
    handle = object_store_files(platform.lake.warehouse, properties).open(f"s3://{path}", "rb")
    wrong: list[tuple[int, int]] = []

    def read_at_random(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(500):
            offset, size = rng.randrange(len(data) - 4096), rng.randrange(1, 4096)
            handle.seek(offset)
            if handle.read(size) != data[offset : offset + size]:
                wrong.append((offset, size))

    threads = [threading.Thread(target=read_at_random, args=(seed,)) for seed in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    handle.close()
    s3.delete_file(path)
    assert wrong == []
