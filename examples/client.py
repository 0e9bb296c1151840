"""Read K2 over HTTP into Arrow (and pandas, if installed): trades, bars and a summary.

Run against `make demo` (it prints the URL and an API key):

    uv run python examples/client.py --url http://127.0.0.1:8000 --key <key>
"""

from __future__ import annotations

import argparse
import json
import urllib.parse
import urllib.request
from typing import Any

import pyarrow as pa


def fetch(
    url: str, key: str, path: str, params: dict[str, Any] | None = None, body: dict[str, Any] | None = None
) -> bytes:
    """GET (or POST with a JSON body) one K2 endpoint and return the raw response body."""
    query = f"?{urllib.parse.urlencode(params, doseq=True)}" if params else ""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        f"{url}{path}{query}",
        data=data,
        headers={
            "X-API-Key": key,
            "Content-Type": "application/json",
        },
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        payload: bytes = response.read()
    return payload


def trades_table(url: str, key: str, symbol: str, limit: int = 10_000) -> pa.Table:
    """A symbol's first trades as an Arrow table (Arrow IPC: fast, and decimals stay decimals)."""
    raw = fetch(url, key, "/v1/trades", {"symbol": symbol, "limit": limit, "format": "arrow"})
    return pa.ipc.open_stream(raw).read_all()


def minute_bars(url: str, key: str, symbol: str, start: str, end: str) -> list[dict[str, Any]]:
    """One-minute OHLCV, VWAP and TWAP bars as JSON rows (decimals are exact strings)."""
    body = {
        "symbols": [symbol],
        "metrics": ["ohlcv", "vwap", "twap"],
        "interval": "1m",
        "start_time": start,
        "end_time": end,
    }
    rows: list[dict[str, Any]] = json.loads(fetch(url, key, "/v1/aggregations", body=body))["data"]
    return rows


def main() -> None:
    """Print what the demo lake holds and a few reads."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--key", required=True)
    args = parser.parse_args()
    symbols = json.loads(fetch(args.url, args.key, "/v1/symbols"))["data"]
    symbol = symbols[0]["symbol"]
    table = trades_table(args.url, args.key, symbol)
    print(f"{len(symbols)} symbols; first trades of {symbol}: {table.num_rows} rows")
    try:
        print(table.to_pandas().head())
    except ImportError:
        print(table.slice(0, 5).to_pylist())
    first = table["timestamp"][0].as_py()
    start = first.replace(minute=0, second=0, microsecond=0)
    bars = minute_bars(
        args.url, args.key, symbol, start.isoformat(), (start.replace(hour=start.hour + 1)).isoformat()
    )
    print(f"{len(bars)} one-minute bars; first: {bars[0]}")


if __name__ == "__main__":
    main()
