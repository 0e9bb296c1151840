"""The file system under the warehouse: a local folder, or an S3 bucket (MinIO) named by the
catalog's ``s3.*`` properties.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote, urlparse

import duckdb
import pyarrow as pa
from fsspec.implementations.arrow import ArrowFSWrapper
from pyarrow import fs as pafs

from k2.errors import ConfigurationError


def is_object_store(location: str) -> bool:
    """Whether ``location`` lives in an S3 bucket."""
    return urlparse(location).scheme in {"s3", "s3a"}


def path_within(location: str) -> str:
    """The path of ``location`` inside its file system: ``s3://b/k`` is ``b/k``, ``file:///p`` is ``/p``."""
    parsed = urlparse(location)
    if parsed.scheme in {"", "file"}:
        return unquote(parsed.path)
    return f"{parsed.netloc}{parsed.path}"


def file_system(location: str, properties: Mapping[str, str]) -> tuple[pafs.FileSystem, str]:
    """A pyarrow file system able to open ``location``, and the location's path within it.

    Raises:
        ConfigurationError: for a scheme K2 does not read.
    """
    parsed = urlparse(location)
    if parsed.scheme in {"", "file"}:
        return pafs.LocalFileSystem(), path_within(location)
    if not is_object_store(location):
        raise ConfigurationError(f"K2 reads local and s3:// warehouses, not {parsed.scheme}://")
    s3 = pafs.S3FileSystem(
        access_key=properties.get("s3.access-key-id"),
        secret_key=properties.get("s3.secret-access-key"),
        endpoint_override=properties.get("s3.endpoint"),
        region=properties.get("s3.region", "us-east-1"),
        scheme=urlparse(properties.get("s3.endpoint", "https://")).scheme or "https",
        connect_timeout=float(properties["s3.connect-timeout"])
        if "s3.connect-timeout" in properties
        else None,
    )
    return s3, path_within(location)


def object_store_files(warehouse: str, catalog_properties: Mapping[str, str]) -> ArrowFSWrapper:
    """The warehouse's S3 bucket as an fsspec file system, as DuckDB reads it."""
    s3, _ = file_system(warehouse, catalog_properties)
    return _S3Files(s3)


class _S3Files(ArrowFSWrapper):  # type: ignore[misc]
    """pyarrow's S3 file system as fsspec, answering to the ``s3://`` scheme DuckDB asks for.

    Files opened for reading are :class:`_PositionalReader` s, safe to share between threads.
    """

    protocol = ("s3", "s3a")

    def _open(self, path: str, mode: str = "rb", *args: Any, **kwargs: Any) -> Any:
        if mode == "rb":
            return _PositionalReader(self.fs.open_input_file(self._strip_protocol(path)))
        return super()._open(path, mode, *args, **kwargs)


class _PositionalReader(io.RawIOBase):
    """A file read by position: each thread has its own position, and each read is one
    positional ``read_at``. DuckDB reads a shared handle from several threads as seek-then-read;
    on a plain file those two steps of different threads interleave (and pyarrow's S3 file moves
    its one position after a read another thread has sought around), returning the wrong bytes.
    """

    def __init__(self, native: pa.NativeFile) -> None:
        super().__init__()
        self._native = native
        self._size: int = native.size()
        self._at = threading.local()

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def size(self) -> int:
        """The file's length in bytes."""
        return self._size

    def tell(self) -> int:
        position: int = getattr(self._at, "position", 0)
        return position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.tell(), io.SEEK_END: self._size}[whence]
        self._at.position = max(0, base + offset)
        return int(self._at.position)

    def read(self, size: int = -1) -> bytes:
        start = self.tell()
        length = self._size - start if size < 0 else min(size, self._size - start)
        if length <= 0:
            return b""
        data: bytes = self._native.read_at(length, start)
        self._at.position = start + len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._native.close()
        super().close()


def attach_warehouse(duck: duckdb.DuckDBPyConnection, catalog_properties: Mapping[str, str]) -> None:
    """Let ``duck`` read the files of the catalog's warehouse (a no-op for a local warehouse).

    DuckDB's own S3 support is an extension downloaded at run time, which a closed network cannot
    fetch; pyarrow's S3 client, wrapped for fsspec, reads the same files.
    """
    warehouse = catalog_properties.get("warehouse", "")
    if is_object_store(warehouse):
        duck.register_filesystem(object_store_files(warehouse, catalog_properties))
        # DuckDB's threads share a Python file handle as seek-then-read, and pyarrow's read lets
        # go of the GIL, so two threads can read from each other's position (seen as corrupt
        # Parquet pages under load). One thread reads these files safely.
        duck.execute("SET threads = 1")
