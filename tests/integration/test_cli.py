"""The k2 command line, through Typer's runner, against a real embedded lake."""

from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from k2.cli import query as query_cli
from k2.cli.main import app

pytestmark = pytest.mark.integration


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("K2_DATA_DIR", str(tmp_path / "lake"))
    return CliRunner()


def test_synthetic_load_then_summary_as_json(run: CliRunner) -> None:
    """`k2 ingest synthetic` loads; `k2 query summary … --format json` answers with exact decimals."""
    loaded = run.invoke(
        app,
        [
            "ingest",
            "synthetic",
            "--symbols",
            "2",
            "--days",
            "2",
            "--trades-per-day",
            "50",
            "--format",
            "json",
        ],
    )
    assert loaded.exit_code == 0, loaded.output
    report = orjson.loads(loaded.stdout)
    assert report["rows_written"] == report["rows_read"] == 400
    listed = orjson.loads(run.invoke(app, ["query", "symbols", "-f", "json"]).stdout)
    symbol = listed[0]["symbol"]
    result = run.invoke(app, ["query", "summary", symbol, "2024-01-08", "-e", "SYN", "-f", "json"])
    assert result.exit_code == 0, result.output
    summary = orjson.loads(result.stdout)
    assert summary["trade_count"] == 50
    assert isinstance(summary["vwap"], str)
    assert summary["first_trade_time"].endswith("Z")


def test_asx_load_and_brief_example(run: CliRunner, asx_sample: Path) -> None:
    """The brief's example: BHP's daily summary on 2014-03-10 from the ASX sample."""
    assert run.invoke(app, ["ingest", "asx", str(asx_sample), "-f", "json"]).exit_code == 0
    result = run.invoke(app, ["query", "summary", "BHP", "2014-03-10", "--format", "json"])
    summary = orjson.loads(result.stdout)
    assert (summary["open"], summary["close"], summary["trade_count"]) == ("36.667", "36.16", 17000)
    trades = run.invoke(app, ["query", "trades", "-s", "BHP", "-n", "3", "-f", "csv"])
    lines = trades.stdout.strip().splitlines()
    assert lines[0].startswith("message_id,trade_id,symbol")
    assert len(lines) == 4
    compat = run.invoke(query_cli.app, ["stats", "-f", "json"])
    assert {t["table"]: t["rows"] for t in orjson.loads(compat.stdout)} == {
        "trades": 200_545,
        "quotes": 169_629,
    }


def test_lake_commands_tag_compact_expire(run: CliRunner) -> None:
    """Maintenance commands run end to end and report what they did."""
    for seed in ("1", "2"):
        assert (
            run.invoke(
                app,
                [
                    "ingest",
                    "synthetic",
                    "--symbols",
                    "1",
                    "--days",
                    "1",
                    "--trades-per-day",
                    "10",
                    "--seed",
                    seed,
                    "--start",
                    "2024-01-0" + seed,
                    "-f",
                    "json",
                ],
            ).exit_code
            == 0
        )
    tagged = run.invoke(app, ["lake", "tag", "audit-1", "-f", "json"])
    assert tagged.exit_code == 0, tagged.output
    compacted = orjson.loads(run.invoke(app, ["lake", "compact", "--min-files", "1", "-f", "json"]).stdout)
    assert {c["table"] for c in compacted} == {"trades", "quotes"}
    expired = run.invoke(app, ["lake", "expire", "--older-than-days", "0", "-f", "json"])
    assert expired.exit_code == 0
    as_of = run.invoke(app, ["query", "trades", "--as-of-tag", "audit-1", "-n", "100", "-f", "json"])
    assert len(orjson.loads(as_of.stdout)) == 20
    (rolled,) = orjson.loads(run.invoke(app, ["lake", "rollup", "-f", "json"]).stdout)
    assert rolled["minutes_written"] == 0  # each load brought the rollup up to date already
    assert rolled["trades_snapshot"] is not None


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["query", "trades"], 3, "load data first"),
        (["query", "bars", "-i", "7m"], 2, "divide a day"),
        (["query", "summary", "BHP", "10/03/2014"], 2, "YYYY-MM-DD"),
        (["ingest", "asx", "/nonexistent"], 2, "not an ASX directory"),
    ],
)
def test_errors_are_one_line_with_a_meaningful_exit_code(
    run: CliRunner, args: list[str], code: int, message: str
) -> None:
    """Bad input and missing data print a short error (no traceback) and exit non-zero."""
    result = run.invoke(app, args)
    assert result.exit_code == code
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_json_errors_are_machine_readable(run: CliRunner) -> None:
    """With --format json an error is a JSON object on stderr."""
    result = run.invoke(app, ["query", "summary", "BHP", "bad-day", "-f", "json"])
    assert orjson.loads(result.stderr)["error"]["type"] == "InvalidInputError"


def test_lake_reset_empties_the_embedded_lake_only(run: CliRunner, tmp_path: Path) -> None:
    """`k2 lake reset --dry-run` lists and removes nothing; `--yes` removes the catalog, warehouse
    and rejects, keeps the platform's folder, and the lake then answers as a new one.
    """
    lake = tmp_path / "lake"
    loaded = run.invoke(
        app, ["ingest", "synthetic", "--symbols", "1", "--days", "1", "--trades-per-day", "20"]
    )
    assert loaded.exit_code == 0, loaded.output
    (lake / "platform").mkdir()
    (lake / "platform" / "keep.txt").write_text("the platform's data")

    listed = run.invoke(app, ["lake", "reset", "--dry-run"])
    assert listed.exit_code == 0, listed.output
    assert f"would remove {lake / 'catalog.db'}" in listed.stdout
    assert (lake / "catalog.db").exists()
    assert (lake / "warehouse").exists()

    reset = run.invoke(app, ["lake", "reset", "--yes"])
    assert reset.exit_code == 0, reset.output
    assert not (lake / "catalog.db").exists()
    assert not (lake / "warehouse").exists()
    assert (lake / "platform" / "keep.txt").read_text() == "the platform's data"
    symbols = run.invoke(app, ["query", "symbols", "-f", "json"])
    assert symbols.exit_code == 0, symbols.output
    assert orjson.loads(symbols.stdout) == []


def test_lake_reset_refuses_a_lake_elsewhere(run: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    """A lake whose catalog is configured elsewhere is not a data directory's to empty."""
    monkeypatch.setenv("K2_LAKE_CATALOG_URI", "postgresql+psycopg://k2@127.0.0.1:5433/k2")
    refused = run.invoke(app, ["lake", "reset", "--yes"])
    assert refused.exit_code == 5
    assert "embedded lake of a data directory only" in refused.output
