"""`k2 demo --live` (`make demo-live`) on the platform: a generated Binance recording goes through
the feed into Kafka, the sink lands it in Iceberg, and the recent trades come back."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from k2.cli.demo import LIVE_MESSAGES
from k2.cli.main import app as cli_app
from k2.settings import K2Settings

pytestmark = [pytest.mark.integration, pytest.mark.platform, pytest.mark.kafka]


def _count(pattern: str, text: str) -> int:
    found = re.search(pattern, text)
    assert found is not None, f"{pattern!r} not in:\n{text}"
    return int(found.group(1).replace(",", ""))


def test_live_demo_streams_a_recording_into_the_lake_and_queries_it(
    platform: K2Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = uuid.uuid4().hex[:8]
    monkeypatch.setenv("K2_PROFILE", "platform")
    monkeypatch.setenv("K2_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("K2_PLATFORM_DATA", str(platform.platform_data))  # the running platform
    monkeypatch.setenv("K2_LAKE_CATALOG_NAME", f"{platform.lake.catalog_name}_{run}")
    monkeypatch.setenv("K2_LAKE_WAREHOUSE", f"{platform.lake.warehouse}/{run}")
    monkeypatch.setenv("K2_KAFKA_TOPIC_PREFIX", f"{platform.kafka.topic_prefix}{run}.")
    monkeypatch.setenv("K2_KAFKA_PARTITIONS", "3")
    monkeypatch.setenv("K2_STREAM_GROUP_ID", f"demo-{run}")
    monkeypatch.setenv("K2_STREAM_INSTANCE_ID", f"demo-{run}")
    monkeypatch.setenv("COLUMNS", "200")

    result = CliRunner().invoke(cli_app, ["demo", "--live"])

    assert result.exit_code == 0, result.output
    out = result.output
    assert _count(r"\(([\d,]+) messages\)", out) == LIVE_MESSAGES
    assert _count(r"([\d,]+) rows landed", out) == LIVE_MESSAGES
    assert _count(r"Recent trades: (\d+)", out) == 10
    assert "BINANCE-BTCUSDT-" in out or "BINANCE-ETHUSDT-" in out or "BINANCE-BNBUSDT-" in out
    assert (tmp_path / "demo-live.jsonl").is_file()
