"""K2: a market data lakehouse — exchange ticks into Apache Iceberg, queried with DuckDB."""

import os
from importlib.metadata import version

# numpy asks the kernel for transparent huge pages for every array of 4 MiB or more. Where the
# kernel's THP defragmentation is "madvise" (Debian's default), first touching such arrays stalls:
# measured here, building 10M-row columns took ~4x as long (the as-of join of 10M trades 6.2 s
# instead of 2.4 s). numpy reads this when it is imported, so it applies to processes that import
# K2 first (the CLI, the API, the benchmarks); a user's NUMPY_MADVISE_HUGEPAGE wins.
os.environ.setdefault("NUMPY_MADVISE_HUGEPAGE", "0")

__version__ = version("k2")
__all__ = ["__version__"]
