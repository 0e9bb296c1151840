"""The brief's main pipeline as a user runs it: `k2 ingest asx --via kafka`, then `k2 stream run`,
on the real platform; the lake ends up exactly as the direct loader leaves it."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import date
from pathlib import Path

import pyarrow as pa
import pytest

from k2.lake.tables import QUOTES, TRADES, TableSpec
from k2.query.bars import daily_summary
from k2.settings import K2Settings
from k2.testing import EmbeddedLake
from tests.fixtures.platform import isolated

pytestmark = [pytest.mark.e2e, pytest.mark.platform, pytest.mark.kafka]

DAYS = [date(2014, 3, day) for day in (10, 11, 12, 13, 14)]


def _k2(settings: K2Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "K2_PROFILE": "platform",
        "K2_DATA_DIR": str(settings.data_dir),
        "K2_LAKE_CATALOG_NAME": settings.lake.catalog_name,
        "K2_LAKE_WAREHOUSE": settings.lake.warehouse or "",
        "K2_KAFKA_TOPIC_PREFIX": settings.kafka.topic_prefix,
        "K2_STREAM_GROUP_ID": f"e2e-{settings.lake.catalog_name}",
    }
    return subprocess.run(
        [sys.executable, "-m", "k2.cli.main", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def _counts(lake: EmbeddedLake, spec: TableSpec) -> dict[str, int]:
    rows = lake.writer.table(spec).scan(selected_fields=("symbol",)).to_arrow()
    grouped = rows.group_by("symbol").aggregate([("symbol", "count")])
    return dict(zip(grouped["symbol"].to_pylist(), grouped["symbol_count"].to_pylist(), strict=True))


def _ids(lake: EmbeddedLake, spec: TableSpec) -> pa.ChunkedArray:
    return lake.writer.table(spec).scan(selected_fields=("message_id",)).to_arrow()["message_id"]


def test_asx_through_kafka_lands_as_the_direct_load(
    platform: K2Settings, asx_lake: EmbeddedLake, asx_sample: Path, tmp_path: Path
) -> None:
    """Same rows per symbol and table, the same ids, and the same daily OHLCV/VWAP, as the loader."""
    run = uuid.uuid4().hex[:8]
    settings = platform.model_copy(
        update={
            "data_dir": tmp_path,
            "lake": platform.lake.model_copy(
                update={"catalog_name": f"{platform.lake.catalog_name}_e2e{run}"}
            ),
            "kafka": platform.kafka.model_copy(
                update={"topic_prefix": f"{platform.kafka.topic_prefix}e2e{run}."}
            ),
        }
    )
    produced = _k2(settings, "ingest", "asx", str(asx_sample), "--via", "kafka")
    assert produced.returncode == 0, produced.stderr
    streamed = _k2(settings, "stream", "run", "--until-idle", "8", "--format", "json")
    assert streamed.returncode == 0, streamed.stderr

    lake = EmbeddedLake.open(settings)
    try:
        for spec in (TRADES, QUOTES):
            assert _counts(lake, spec) == _counts(asx_lake, spec)
            ids = lake.writer.table(spec).scan(selected_fields=("message_id",)).to_arrow()["message_id"]
            direct = (
                asx_lake.writer.table(spec).scan(selected_fields=("message_id",)).to_arrow()["message_id"]
            )
            assert pa.compute.count_distinct(ids).as_py() == len(ids)
            assert set(ids.to_pylist()) == set(direct.to_pylist())
        for symbol in _counts(asx_lake, TRADES):
            for day in DAYS:
                assert daily_summary(lake.engine, symbol, day) == daily_summary(asx_lake.engine, symbol, day)
    finally:
        lake.close()


def test_every_source_goes_through_kafka_too(platform: K2Settings, tmp_path: Path) -> None:
    """`--via kafka` is not only for ASX files: a synthetic market produced to Kafka and landed
    by the sink is the same rows, with the same ids, as the same market loaded directly.
    """
    market = ["--symbols", "2", "--days", "2", "--trades-per-day", "300", "--seed", "11"]
    direct = isolated(platform, tmp_path / "direct")
    loaded = _k2(direct, "ingest", "synthetic", *market)
    assert loaded.returncode == 0, loaded.stderr
    kafka = isolated(platform, tmp_path / "kafka")
    produced = _k2(kafka, "ingest", "synthetic", *market, "--via", "kafka", "--format", "json")
    assert produced.returncode == 0, produced.stderr
    streamed = _k2(kafka, "stream", "run", "--until-idle", "8", "--format", "json")
    assert streamed.returncode == 0, streamed.stderr

    expected, landed = EmbeddedLake.open(direct), EmbeddedLake.open(kafka)
    try:
        for spec in (TRADES, QUOTES):
            assert _counts(landed, spec) == _counts(expected, spec)
            assert set(_ids(landed, spec).to_pylist()) == set(_ids(expected, spec).to_pylist())
    finally:
        landed.close()
        expected.close()
