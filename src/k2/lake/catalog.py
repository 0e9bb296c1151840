"""Open the Iceberg catalog the settings name: SQLite + local warehouse, or PostgreSQL + S3."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pyiceberg.catalog import Catalog
from pyiceberg.catalog.sql import SqlCatalog

from k2.settings import K2Settings


def catalog_properties(settings: K2Settings) -> dict[str, str]:
    """Pyiceberg catalog properties for ``settings``; the one place they are built.

    A PostgreSQL catalog and the object store get short connect timeouts, so that a call to a
    service that is down fails within seconds (and counts against its breaker) instead of hanging.
    """
    lake = settings.lake
    properties = {
        "uri": _with_connect_timeout(settings.catalog_uri, lake.catalog_connect_timeout_s),
        "warehouse": settings.warehouse,
        "s3.connect-timeout": str(lake.s3_connect_timeout_s),
    }
    if lake.s3_endpoint:
        properties["s3.endpoint"] = lake.s3_endpoint
        properties["s3.path-style-access"] = "true"
        properties["s3.region"] = lake.s3_region
    if lake.s3_access_key_id:
        properties["s3.access-key-id"] = lake.s3_access_key_id
    if lake.s3_secret_access_key:
        properties["s3.secret-access-key"] = lake.s3_secret_access_key.get_secret_value()
    return properties


def _with_connect_timeout(uri: str, seconds: int) -> str:
    """``uri`` with libpq's ``connect_timeout`` for a PostgreSQL URI that does not set one."""
    parts = urlsplit(uri)
    query = dict(parse_qsl(parts.query))
    if not parts.scheme.startswith("postgresql") or "connect_timeout" in query:
        return uri
    return urlunsplit(parts._replace(query=urlencode({**query, "connect_timeout": str(seconds)})))


def open_catalog(settings: K2Settings) -> SqlCatalog:
    """Open (and on first use create) the catalog; the embedded one lives in the data dir.

    Args:
        settings: K2's settings.

    Returns:
        The catalog, with K2's namespace created.
    """
    if not settings.lake.catalog_uri:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    if not settings.lake.warehouse:
        Path(settings.data_dir / "warehouse").mkdir(parents=True, exist_ok=True)
    catalog = SqlCatalog(settings.lake.catalog_name, **catalog_properties(settings))
    catalog.create_namespace_if_not_exists(settings.lake.namespace)
    return catalog


def close_catalog(catalog: Catalog) -> None:
    """Release the catalog's database connections (a PostgreSQL catalog holds a pool)."""
    if isinstance(catalog, SqlCatalog):
        catalog.engine.dispose()
