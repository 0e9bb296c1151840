import csv
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from tempfile import TemporaryDirectory

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from k2.domain.identity import message_id
from k2.errors import InvalidInputError
from k2.ingest.rejects import RejectFile
from k2.ingest.sources.asx import AsxSource, day_sequence
from tests.fixtures.asx_files import write_asx_dir

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _load(root: Path, tmp_path: Path) -> tuple[dict[str, pa.Table], list[dict[str, str]], dict[str, int]]:
    rejects = RejectFile(tmp_path / "rejects.csv")
    source = AsxSource(root, rejects, batch_rows=3, ingested_at=NOW)
    tables: dict[str, list[pa.Table]] = {}
    read: dict[str, int] = {}
    for batch in source.batches():
        tables.setdefault(batch.table.name, []).append(batch.rows)
        read[batch.table.name] = read.get(batch.table.name, 0) + batch.rows_read
    rejects.close()
    rows: list[dict[str, str]] = []
    if rejects.count:
        with rejects.path.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
    return {k: pa.concat_tables(v) for k, v in tables.items()}, rows, read


TRADES = (
    "03/10/2014,10:00:00.001,36.70,100,0,,\r\n"
    "03/10/2014,10:00:00.001,36.71,200,0,,\r\n"
    "03/10/2014,10:00:00.001,36.72,300,3,X,36.79\r\n"
    "\r\n"
    "03/10/2014,10:00:01.000,abc,100,0,,\r\n"
    "03/10/2014,10:00:01.500,36.75,10,0,,\r\n"
    "03/10/2014,10:00:01.600,36.75,-10,0,,\r\n"
    "13/45/2014,10:00:01.000,36.70,100,0,,\r\n"
    "03/10/2014,10:00:02.000,36.70\r\n"
    "03/11/2014,10:00:00.000,36.80,50,0,,\r\n"
)


def test_same_millisecond_trades_all_survive_in_file_order(tmp_path: Path) -> None:
    """Three prints in one millisecond keep distinct ids and their exchange order."""
    tables, _, _ = _load(write_asx_dir(tmp_path / "asx", trades=TRADES), tmp_path)
    all_rows = tables["trades"].to_pylist()
    same_ms = [r for r in all_rows if r["timestamp"] == datetime(2014, 3, 9, 23, 0, 0, 1000, tzinfo=UTC)]
    assert [r["price"] for r in same_ms] == [Decimal("36.70"), Decimal("36.71"), Decimal("36.72")]
    assert [r["source_sequence"] for r in same_ms] == [1, 2, 3]
    assert len({r["message_id"] for r in all_rows}) == len(all_rows)


def test_ids_are_derived_from_venue_symbol_day_and_sequence(tmp_path: Path) -> None:
    """trade_id names the venue, symbol, local day and sequence; message_id hashes it."""
    tables, _, _ = _load(write_asx_dir(tmp_path / "asx", trades=TRADES), tmp_path)
    first = tables["trades"].to_pylist()[0]
    assert first["trade_id"] == "ASX-BHP-20140310-1"
    assert first["message_id"] == message_id("ASX", "trade", "ASX-BHP-20140310-1")


def test_sequence_counts_rejected_rows_so_ids_do_not_shift_when_fixed(tmp_path: Path) -> None:
    """A bad row keeps its sequence slot, so fixing it and reloading keeps the other ids."""
    broken, _, _ = _load(write_asx_dir(tmp_path / "broken", trades=TRADES), tmp_path)
    fixed_text = TRADES.replace("10:00:01.000,abc", "10:00:01.000,36.74")
    fixed, _, _ = _load(write_asx_dir(tmp_path / "fixed", trades=fixed_text), tmp_path)
    after_bad = [r for r in broken["trades"].to_pylist() if r["price"] == Decimal("36.75")]
    assert [r["source_sequence"] for r in after_bad] == [5]
    assert {r["message_id"] for r in broken["trades"].to_pylist()} < {
        r["message_id"] for r in fixed["trades"].to_pylist()
    }


def test_bad_rows_go_to_the_reject_file_with_line_and_reason(tmp_path: Path) -> None:
    """Unparseable price, impossible date and short rows are rejected with their physical line."""
    _, rejects, read = _load(write_asx_dir(tmp_path / "asx", trades=TRADES), tmp_path)
    found = {(r["line"], r["reason"]) for r in rejects if r["file"].endswith("trades/7078.csv")}
    assert found == {
        ("5", "invalid price"),
        ("7", "invalid volume (negative)"),
        ("8", "invalid date or time (want MM/DD/YYYY and HH:MM:SS.fff)"),
        ("9", "expected 7 fields, found 3"),
    }
    assert read["trades"] == 9


def test_trade_conditions_and_vendor_fields_are_kept_raw(tmp_path: Path) -> None:
    """Qualifiers become trade_conditions; venue, the 7th column and company id go to vendor_data."""
    tables, _, _ = _load(write_asx_dir(tmp_path / "asx", trades=TRADES), tmp_path)
    third = tables["trades"].to_pylist()[2]
    assert third["trade_conditions"] == ["3"]
    assert dict(third["vendor_data"]) == {"company_id": "7078", "venue": "X", "buyer_id": "36.79"}


def test_quotes_read_bid_ask_then_volumes_and_zero_means_no_price(tmp_path: Path) -> None:
    """Quote columns are Bid, Ask, BidVolume, AskVolume; a 0.0 price is a missing side."""
    quotes = "03/10/2014,05:43:45.676,37.7,0.0,300,0\r\n03/10/2014,05:43:45.676,37.7,37.73,300,600.0\r\n"
    tables, _, _ = _load(write_asx_dir(tmp_path / "asx", quotes=quotes), tmp_path)
    first, second = tables["quotes"].to_pylist()
    assert (first["bid_price"], first["ask_price"], first["bid_quantity"], first["ask_quantity"]) == (
        Decimal("37.7"),
        None,
        Decimal(300),
        Decimal(0),
    )
    assert (second["ask_price"], second["ask_quantity"]) == (Decimal("37.73"), Decimal(600))
    assert first["timestamp"] == datetime(2014, 3, 9, 18, 43, 45, 676000, tzinfo=UTC)


def test_reference_data_with_spaced_headers_and_no_records(tmp_path: Path) -> None:
    """Dividends load despite spaces in the header; 'no records' placeholders load nothing."""
    tables, rejects, _ = _load(write_asx_dir(tmp_path / "asx", trades=TRADES), tmp_path)
    (dividend,) = tables["dividends"].to_pylist()
    assert (dividend["symbol"], dividend["net_amount"], dividend["currency"]) == (
        "BHP",
        Decimal("0.59"),
        "USD",
    )
    assert tables["splits"].num_rows == 0
    (instrument,) = tables["instruments"].to_pylist()
    assert (instrument["isin"], str(instrument["valid_to"])) == ("AU000000BHP4", "2014-03-31")
    assert not [r for r in rejects if "mergers" in r["file"]]


def test_directory_without_company_info_is_refused(tmp_path: Path) -> None:
    """A directory that is not an ASX sample gives a clear error."""
    with pytest.raises(InvalidInputError, match="company_info"):
        AsxSource(tmp_path, RejectFile(tmp_path / "r.csv"), batch_rows=10, ingested_at=NOW)


def test_day_sequence_continues_across_batches_and_interleaved_days() -> None:
    """Rows are numbered per day in order, continuing counts from earlier batches."""
    counts: dict[str, int] = {"d1": 2}
    seq = day_sequence(pa.chunked_array([["d1", "d2", "d1", "d2", "d1"]]), counts)
    assert seq.to_pylist() == [3, 1, 4, 2, 5]
    assert counts == {"d1": 5, "d2": 2}


trade_line = st.builds(
    lambda day, h, m, s, ms, price, volume, qualifier, venue, buyer: (
        f"03/{day:02d}/2014,{h:02d}:{m:02d}:{s:02d}.{ms:03d},{price},{volume},{qualifier},{venue},{buyer}"
    ),
    st.sampled_from([10, 11]),
    st.integers(0, 23),
    st.integers(0, 59),
    st.integers(0, 59),
    st.integers(0, 999),
    st.sampled_from(["36.70", "0.5", "1", "100.125", "0.0"]),
    st.sampled_from(["100", "2500", "0", "12345678901"]),
    st.sampled_from(["0", "3", "", " X "]),
    st.sampled_from(["", "X", " CXA"]),
    st.sampled_from(["", "36.79"]),
)
quote_line = st.builds(
    lambda day, h, m, s, ms, bid, ask, bid_volume, ask_volume: (
        f"04/{day:02d}/2014,{h:02d}:{m:02d}:{s:02d}.{ms:03d},{bid},{ask},{bid_volume},{ask_volume}"
    ),
    st.sampled_from([5, 6]),
    st.integers(0, 23),
    st.integers(0, 59),
    st.integers(0, 59),
    st.integers(0, 999),
    st.sampled_from(["37.7", "0.0", "0", "1.25"]),
    st.sampled_from(["37.73", "0.0", "2"]),
    st.sampled_from(["300", "0"]),
    st.sampled_from(["600.0", "0", "15"]),
)
# Lines any of which sends its batch to the SQL path: bad values, other spellings, DST edges.
odd_line = st.sampled_from(
    [
        "03/10/2014,10:00:01.000,abc,100,0,,",
        "03/10/2014,10:00:01.600,36.75,-10,0,,",
        "13/45/2014,10:00:01.000,36.70,100,0,,",
        "3/10/2014,10:00:01.000,36.70,100,0,,",
        "03/10/2014,9:00:01.000,36.70,100,0,,",
        "03/10/2014,10:00:01,36.70,100,0,,",
        "03/10/2014, 10:00:01.000,36.70,100,0,,",
        "03/10/2014,10:00:01.000,36.700000000,100,0,,",
        "04/06/2014,02:30:00.000,36.70,100,0,,",
        "10/05/2014,02:30:00.000,36.70,100,0,,",
        "03/10/2014,10:00:02.000,36.70",
        "",
    ]
)


def _source_rows(
    root: Path, tmp_path: Path, *, plain: bool
) -> tuple[dict[str, pa.Table], list[dict[str, str]]]:
    with pytest.MonkeyPatch.context() as patch:
        if not plain:
            patch.setattr("k2.ingest.sources.asx._plain_rows", lambda *_: None)
        tables, rejects, _ = _load(root, tmp_path / ("plain" if plain else "sql"))
    return tables, rejects


@settings(max_examples=60, deadline=None)
@given(
    trades=st.lists(st.one_of(trade_line, trade_line, trade_line, odd_line), max_size=12),
    quotes=st.lists(st.one_of(quote_line, quote_line, odd_line.map(lambda line: line[:-2])), max_size=12),
)
def test_bulk_conversion_gives_what_the_sql_gives(trades: list[str], quotes: list[str]) -> None:
    """Rows, ids and rejects are the same whether a batch is converted in bulk or by the SQL."""
    with TemporaryDirectory() as scratch:
        tmp_path = Path(scratch)
        root = write_asx_dir(
            tmp_path / "asx", trades="\r\n".join(trades) + "\r\n", quotes="\r\n".join(quotes) + "\r\n"
        )
        (tmp_path / "plain").mkdir()
        (tmp_path / "sql").mkdir()
        bulk, bulk_rejects = _source_rows(root, tmp_path, plain=True)
        sql, sql_rejects = _source_rows(root, tmp_path, plain=False)
    assert bulk.keys() == sql.keys()
    for name, rows in bulk.items():
        assert rows.equals(sql[name]), name
    # Files are read side by side, so their rejects interleave in either order.
    assert sorted(bulk_rejects, key=lambda r: (r["file"], r["line"])) == sorted(
        sql_rejects, key=lambda r: (r["file"], r["line"])
    )
