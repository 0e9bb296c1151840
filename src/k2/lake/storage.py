"""The file system under the warehouse: a local folder, or an S3 bucket (MinIO) named by the
catalog's ``s3.*`` properties.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import unquote, urlparse

import duckdb
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
    )
    return s3, path_within(location)


class _S3Files(ArrowFSWrapper):  # type: ignore[misc]
    """pyarrow's S3 file system as fsspec, answering to the ``s3://`` scheme DuckDB asks for."""

    protocol = ("s3", "s3a")


def attach_warehouse(duck: duckdb.DuckDBPyConnection, catalog_properties: Mapping[str, str]) -> None:
    """Let ``duck`` read the files of the catalog's warehouse (a no-op for a local warehouse).

    DuckDB's own S3 support is an extension downloaded at run time, which a closed network cannot
    fetch; pyarrow's S3 client, wrapped for fsspec, reads the same files.
    """
    warehouse = catalog_properties.get("warehouse", "")
    if is_object_store(warehouse):
        s3, _ = file_system(warehouse, catalog_properties)
        duck.register_filesystem(_S3Files(s3))
        # DuckDB's threads share a Python file handle as seek-then-read, and pyarrow's read lets
        # go of the GIL, so two threads can read from each other's position (seen as corrupt
        # Parquet pages under load). One thread reads these files safely.
        duck.execute("SET threads = 1")
