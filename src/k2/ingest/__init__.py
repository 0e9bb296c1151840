"""Outside world into the lake: sources (ASX files, synthetic market, v2 files) and the loader."""
