"""Loads audit themselves: every commit of a load records the rows it rejected so far and its
reject file, the last one the final count; ``/v1/loads`` and ``k2 query loads`` answer them, newest
first. Snapshots say which K2 writer made them, and a stream sink commit its Kafka offsets.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from pydantic import SecretStr
from typer.testing import CliRunner

from k2.api import create_app
from k2.cli.main import app
from k2.ingest.destinations import LakeDestination
from k2.ingest.rejects import RejectFile
from k2.ingest.report import IngestReport
from k2.ingest.sources.base import SourceBatch
from k2.lake.errors import TableNotFoundError
from k2.lake.summary import LOAD_REJECT_FILE, LOAD_ROWS_REJECTED
from k2.lake.tables import QUOTES, TRADES
from k2.settings import ApiSettings
from k2.stream.checkpoint import sink_summary
from k2.testing import EmbeddedLake, make_trade_rows, trade_row
from tests.fixtures.asx_files import write_asx_dir

pytestmark = pytest.mark.integration

KEY = {"X-API-Key": "test-key"}

#: Two good BHP trades on 10 March 2014, then four bad rows (a price that is no number, a negative
#: volume, an impossible date, a short line).
BAD_TRADES = (
    "03/10/2014,10:00:00.001,36.70,100,0,,\r\n"
    "03/10/2014,10:00:01.000,abc,100,0,,\r\n"
    "03/10/2014,10:00:01.500,36.75,10,0,,\r\n"
    "03/10/2014,10:00:01.600,36.75,-10,0,,\r\n"
    "13/45/2014,10:00:01.000,36.70,100,0,,\r\n"
    "03/10/2014,10:00:02.000,36.70\r\n"
)
GOOD_TRADES = "03/11/2014,10:00:00.000,36.80,50,0,,\r\n03/11/2014,10:00:05.000,36.85,70,0,,\r\n"
ONLY_BAD_TRADES = "03/12/2014,10:00:01.000,abc,100,0,,\r\n03/12/2014,10:00:02.000,36.70\r\n"
OFFSETS = {"market.equities.trades.asx": {1: 7, 0: 12}}
T0 = datetime(2024, 1, 8, tzinfo=UTC)


def _client(lake: EmbeddedLake) -> TestClient:
    api = ApiSettings(keys=SecretStr("tester:test-key"), rate_limit="10000/minute")
    return TestClient(create_app(lake.settings.model_copy(update={"api": api}), registry=CollectorRegistry()))


def _cli(lake: EmbeddedLake, monkeypatch: pytest.MonkeyPatch, *args: str) -> Any:
    monkeypatch.setenv("K2_DATA_DIR", str(lake.settings.data_dir))
    result = CliRunner().invoke(app, ["query", *args, "--format", "json"])
    assert result.exit_code == 0, result.output
    return orjson.loads(result.stdout)


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[EmbeddedLake, list[IngestReport]]]:
    """A lake with three ASX loads: bad rows among good ones, then good rows only, then bad only."""
    root = tmp_path_factory.mktemp("loads")
    lake = EmbeddedLake.create(root / "lake")
    reports = [
        lake.load_asx(write_asx_dir(root / name, trades=trades))
        for name, trades in (("bad", BAD_TRADES), ("good", GOOD_TRADES), ("rejected", ONLY_BAD_TRADES))
    ]
    yield lake, reports
    lake.close()


def test_the_api_reports_each_loads_rejects_newest_first(
    loaded: tuple[EmbeddedLake, list[IngestReport]],
) -> None:
    """The exact reject count and reject file name of each load's report, the newest load first."""
    lake, (bad, good, rejected) = loaded
    assert (bad.rows_rejected, good.rows_rejected, rejected.rows_rejected) == (4, 0, 2)
    with _client(lake) as client:
        response = client.get("/v1/loads", params={"table": "trades"}, headers=KEY)
    assert response.status_code == 200, response.text
    rows = response.json()["data"]
    assert [r["load_id"] for r in rows] == [rejected.load_id, good.load_id, bad.load_id]
    assert [(r["rows_rejected"], r["reject_file"]) for r in rows] == [
        (2, rejected.reject_file.name if rejected.reject_file else "missing"),
        (0, None),
        (4, bad.reject_file.name if bad.reject_file else "missing"),
    ]
    assert [(r["commits"], r["rows_written"]) for r in rows] == [(1, 0), (1, 2), (1, 2)]
    assert {(r["source_kind"], r["source_description"].split(":")[0]) for r in rows} == {("asx", "asx")}
    assert rows[2]["first_commit_at"] <= rows[2]["last_commit_at"] <= rows[1]["first_commit_at"]


def test_the_cli_answers_what_the_api_answers(
    loaded: tuple[EmbeddedLake, list[IngestReport]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``k2 query loads`` gives the same rows, fields and values, and keeps to ``--limit``."""
    lake, (_, good, rejected) = loaded
    with _client(lake) as client:
        api = client.get("/v1/loads", params={"limit": 2}, headers=KEY).json()["data"]
    cli = _cli(lake, monkeypatch, "loads", "--limit", "2")
    assert cli == api
    assert [r["load_id"] for r in cli] == [rejected.load_id, good.load_id]


def test_a_table_the_loads_did_not_touch_lists_no_load(
    loaded: tuple[EmbeddedLake, list[IngestReport]], monkeypatch: pytest.MonkeyPatch
) -> None:
    lake, _ = loaded
    assert _cli(lake, monkeypatch, "loads", "--table", "quotes") == []


def test_rows_rejected_after_the_last_commit_get_a_commit_of_their_own(tmp_path: Path) -> None:
    """When a table's rows end on a commit boundary and rows are rejected after it, a commit
    without rows carries the final count; a table that got nothing but rejects gets one too.
    """
    lake = EmbeddedLake.create(tmp_path / "lake")
    try:
        rejects = RejectFile(tmp_path / "load.rejects.csv")
        rejects.add("trades/7078.csv", 1, "bad price", "x")
        properties = {"k2.load.id": "boundary"}

        def summary() -> dict[str, str]:
            return {**properties, LOAD_ROWS_REJECTED: str(rejects.count), LOAD_REJECT_FILE: rejects.path.name}

        destination = LakeDestination(lake.writer, summary, commit_rows=2)
        report = IngestReport(load_id="boundary", source="test")
        rows = make_trade_rows([trade_row("BHP", T0 + timedelta(seconds=i), sequence=i) for i in (1, 2)])
        destination.take(SourceBatch(TRADES, rows, 2, 0), report)  # a full commit
        destination.take(SourceBatch(QUOTES, QUOTES.record.arrow_schema().empty_table(), 3, 0), report)
        rejects.add("trades/7078.csv", 3, "bad price", "y")
        rejects.add("quotes/7078.csv", 1, "bad price", "z")
        destination.finish(report)
        rejects.close()
        for spec, written in ((TRADES, 2), (QUOTES, 0)):
            table = lake.engine.table(spec)
            last = table.current_snapshot()
            assert last is not None
            assert last.summary is not None
            assert last.summary.additional_properties[LOAD_ROWS_REJECTED] == "3"
            assert int(last.summary.additional_properties["total-records"]) == written
            assert int(last.summary.additional_properties.get("added-records", "0")) == 0
        assert report.counts("trades").commits == 2
        assert report.counts("quotes").commits == 1
    finally:
        lake.close()


def test_a_load_without_late_rejects_makes_no_extra_commit(tmp_path: Path) -> None:
    lake = EmbeddedLake.create(tmp_path / "lake")
    try:
        rejects = RejectFile(tmp_path / "load.rejects.csv")

        def summary() -> dict[str, str]:
            return {"k2.load.id": "clean", LOAD_ROWS_REJECTED: str(rejects.count)}

        destination = LakeDestination(lake.writer, summary, commit_rows=2)
        report = IngestReport(load_id="clean", source="test")
        rows = make_trade_rows([trade_row("BHP", T0 + timedelta(seconds=i), sequence=i) for i in (1, 2)])
        destination.take(SourceBatch(TRADES, rows, 2, 0), report)
        destination.take(SourceBatch(QUOTES, QUOTES.record.arrow_schema().empty_table(), 0, 0), report)
        destination.finish(report)
        assert len(lake.engine.table(TRADES).snapshots()) == 1
        assert report.counts("trades").commits == 1
        with pytest.raises(TableNotFoundError):
            lake.engine.table(QUOTES)
    finally:
        lake.close()


def test_snapshots_show_a_sink_commits_offsets_and_each_writer(
    loaded: tuple[EmbeddedLake, list[IngestReport]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A commit made the way the stream sink makes it lists its offsets by topic and partition;
    a load's commit lists none. The API and the CLI answer the same.
    """
    lake = EmbeddedLake.create(tmp_path / "lake")
    try:
        report = lake.load_asx(write_asx_dir(tmp_path / "asx", trades=GOOD_TRADES))
        rows = make_trade_rows([trade_row("BHP", T0, sequence=1)])
        lake.writer.append(TRADES, rows, partial(sink_summary, OFFSETS), commit_when_empty=True)
        with _client(lake) as client:
            api = client.get("/v1/snapshots", headers=KEY).json()["data"]
        sink, load = api
        assert sink["source"] == "stream"
        assert sink["load_id"] is None
        assert sink["kafka_offsets"] == [
            {"topic": "market.equities.trades.asx", "partition": 0, "next_offset": 12},
            {"topic": "market.equities.trades.asx", "partition": 1, "next_offset": 7},
        ]
        assert (load["source"], load["load_id"], load["kafka_offsets"]) == ("load", report.load_id, None)
        assert _cli(lake, monkeypatch, "snapshots") == api
    finally:
        lake.close()
