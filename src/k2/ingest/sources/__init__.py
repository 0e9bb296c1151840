"""Sources: each turns one kind of input into batches of v2 rows for the loader."""

from k2.ingest.sources.base import Source, SourceBatch

__all__ = ["Source", "SourceBatch"]
