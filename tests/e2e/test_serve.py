"""`k2 serve` as a real process on loopback, read by the example client."""

import sys
import urllib.error
from collections.abc import Iterator
from pathlib import Path

import pytest

from k2.ingest.sources.synthetic import SyntheticMarket
from k2.testing import EmbeddedLake
from tests.fixtures.servers import k2_serve

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "examples"))
import client  # noqa: E402 - the example lives outside the package

KEY = "e2e-key"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data_dir = tmp_path_factory.mktemp("serve") / "lake"
    EmbeddedLake.create(data_dir).load_synthetic(SyntheticMarket(symbols=2, days=1, trades_per_day=500))
    with k2_serve(data_dir, {"K2_API_KEYS": f"e2e:{KEY}"}) as served:
        yield served.url


def test_example_client_reads_trades_and_bars(server: str) -> None:
    """The example's Arrow and JSON reads work against a real server process."""
    table = client.trades_table(server, KEY, "KDA", limit=100)
    assert table.num_rows == 100
    bars = client.minute_bars(server, KEY, "KDA", "2024-01-07T23:00:00+00:00", "2024-01-08T00:00:00+00:00")
    assert bars
    assert {"open", "vwap", "twap"} <= set(bars[0])


def test_wrong_key_is_refused_over_the_wire(server: str) -> None:
    """Authentication holds on the real server too."""
    with pytest.raises(urllib.error.HTTPError) as refused:
        client.fetch(server, "nope", "/v1/symbols")
    assert refused.value.code == 403
    refused.value.close()
