"""What every command gets from the root callback: settings, and the catalog opened once."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import typer

from k2.settings import K2Settings

if TYPE_CHECKING:
    from pyiceberg.catalog import Catalog

    from k2.query.engine import QueryEngine
    from k2.query.reader import Reader


@dataclass
class CliContext:
    """Settings plus lazily opened lake handles."""

    settings: K2Settings
    _catalog: Catalog | None = field(default=None, repr=False)
    _engine: QueryEngine | None = field(default=None, repr=False)
    _reader: Reader | None = field(default=None, repr=False)

    @property
    def catalog(self) -> Catalog:
        """The catalog the settings name, opened on first use."""
        if self._catalog is None:
            from k2.lake.catalog import open_catalog

            self._catalog = open_catalog(self.settings)
        return self._catalog

    @property
    def engine(self) -> QueryEngine:
        """A query engine over the catalog, opened on first use."""
        if self._engine is None:
            from k2.query.engine import QueryEngine

            self._engine = QueryEngine(self.catalog, self.settings.lake.namespace, self.settings.query)
        return self._engine

    @property
    def reader(self) -> Reader:
        """The reader ``K2_QUERY_ENGINE`` names (DuckDB or Trino), over :attr:`engine`."""
        if self._reader is None:
            from k2.query.reader import open_reader

            self._reader = open_reader(self.settings, self.engine)
        return self._reader


def context(ctx: typer.Context) -> CliContext:
    """The :class:`CliContext` the root callback stored."""
    obj = ctx.find_root().obj
    if not isinstance(obj, CliContext):
        obj = CliContext(K2Settings())
        ctx.find_root().obj = obj
    return obj
