"""Open the Iceberg catalog the settings name: SQLite + local warehouse, or PostgreSQL + S3."""

from __future__ import annotations

from pathlib import Path

from pyiceberg.catalog import Catalog
from pyiceberg.catalog.sql import SqlCatalog

from k2.settings import K2Settings


def catalog_properties(settings: K2Settings) -> dict[str, str]:
    """Pyiceberg catalog properties for ``settings``; the one place they are built."""
    lake = settings.lake
    properties = {"uri": settings.catalog_uri, "warehouse": settings.warehouse}
    if lake.s3_endpoint:
        properties["s3.endpoint"] = lake.s3_endpoint
        properties["s3.path-style-access"] = "true"
        properties["s3.region"] = lake.s3_region
    if lake.s3_access_key_id:
        properties["s3.access-key-id"] = lake.s3_access_key_id
    if lake.s3_secret_access_key:
        properties["s3.secret-access-key"] = lake.s3_secret_access_key.get_secret_value()
    return properties


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
