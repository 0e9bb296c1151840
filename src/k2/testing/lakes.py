"""An embedded lake (SQLite catalog, local warehouse) in a directory, with its handles."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pyiceberg.catalog import Catalog

from k2.ingest.loader import Loader, new_load_id, reject_file_for
from k2.ingest.rejects import RejectFile
from k2.ingest.report import IngestReport
from k2.ingest.sources.asx import AsxSource
from k2.ingest.sources.base import Source
from k2.ingest.sources.synthetic import SyntheticMarket, SyntheticSource
from k2.lake.catalog import close_catalog, open_catalog
from k2.lake.writer import LakeWriter
from k2.query.engine import QueryEngine
from k2.settings import K2Settings

SourceFactory = Callable[[RejectFile, int, datetime], Source]


@dataclass
class EmbeddedLake:
    """Settings, catalog, writer and engine of one embedded lake."""

    settings: K2Settings
    catalog: Catalog
    writer: LakeWriter
    engine: QueryEngine

    @classmethod
    def create(cls, data_dir: Path) -> EmbeddedLake:
        """Open (creating) the embedded lake in ``data_dir``."""
        return cls.open(K2Settings(data_dir=data_dir))

    @classmethod
    def open(cls, settings: K2Settings) -> EmbeddedLake:
        """Open (creating) the lake ``settings`` name: embedded, or on the platform's services."""
        catalog = open_catalog(settings)
        writer = LakeWriter(catalog, settings.lake.namespace, settings.lake.target_file_size_bytes)
        engine = QueryEngine(catalog, settings.lake.namespace, settings.query)
        return cls(settings, catalog, writer, engine)

    def close(self) -> None:
        """Close the query engine and release the catalog's connections."""
        self.engine.close()
        close_catalog(self.catalog)

    def load(self, make_source: SourceFactory) -> IngestReport:
        """Run the source ``make_source(rejects, batch_rows, ingested_at)`` builds into the lake."""
        load_id = new_load_id()
        rejects = reject_file_for(self.settings.reject_dir, load_id)
        source = make_source(rejects, self.settings.ingest.read_batch_rows, datetime.now(UTC))
        return Loader(self.writer, commit_rows=self.settings.ingest.commit_rows).run(source, rejects, load_id)

    def load_asx(self, path: Path) -> IngestReport:
        """Load an ASX directory."""
        return self.load(lambda rejects, rows, at: AsxSource(path, rejects, batch_rows=rows, ingested_at=at))

    def load_synthetic(self, market: SyntheticMarket) -> IngestReport:
        """Load a synthetic market."""
        return self.load(lambda _, rows, at: SyntheticSource(market, batch_rows=rows, ingested_at=at))
