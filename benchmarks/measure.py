"""What a benchmark subprocess (an ingest, the API's load clients) reports to the parent: one
JSON line on stdout, read back by :func:`benchmarks.ingest.child_result`. Standard library only.
"""

from __future__ import annotations

import json
import resource
import sys
from typing import Any

RESULT_PREFIX = "BENCH-RESULT "


def peak_rss_bytes() -> int:
    """Peak resident set size of this process so far (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def emit(result: dict[str, Any]) -> None:
    """Print ``result`` for the parent, with this process's peak RSS added."""
    payload = {**result, "peak_rss_bytes": peak_rss_bytes()}
    sys.stdout.write(RESULT_PREFIX + json.dumps(payload) + "\n")
    sys.stdout.flush()
