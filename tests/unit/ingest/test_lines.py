import csv
from pathlib import Path

from k2.ingest.lines import CsvRows
from k2.ingest.rejects import RejectFile


def _rows(path: Path, columns: int, **kwargs: object) -> tuple[CsvRows, list[list[str]], list[int]]:
    rows = CsvRows(path, columns, 2, **kwargs)  # type: ignore[arg-type]
    fields: list[list[str]] = []
    ordinals: list[int] = []
    for batch in rows.batches():
        ordinals += batch.ordinals.to_pylist()
        fields += [list(r) for r in zip(*[f.to_pylist() for f in batch.fields], strict=True)]
    return rows, fields, ordinals


def test_line_numbers_survive_blank_and_malformed_lines(tmp_path: Path) -> None:
    """Rows keep their physical line numbers even when blank lines and wrong-width lines occur."""
    path = tmp_path / "t.csv"
    path.write_text("a,1\r\n\r\nb,2\r\nbad\r\nc,3,extra\r\nd,4\r\n")
    rows, fields, ordinals = _rows(path, 2)
    assert fields == [["a", "1"], ["b", "2"], ["d", "4"]]
    assert rows.line_numbers(ordinals) == [1, 3, 6]
    assert rows.skipped_lines() == [4, 5]


def test_rejects_carry_line_number_reason_and_text(tmp_path: Path) -> None:
    """Skipped lines land in the reject file with their line and why."""
    path = tmp_path / "t.csv"
    path.write_text("a,1\nbad\n")
    rows, _, _ = _rows(path, 2)
    reject = RejectFile(tmp_path / "r.csv")
    rows.write_rejects(reject)
    reject.close()
    with (tmp_path / "r.csv").open(newline="") as handle:
        written = list(csv.DictReader(handle))
    assert written == [
        {"file": str(path), "line": "2", "reason": "expected 2 fields, found 1", "text": "bad"}
    ]


def test_header_and_quoted_fields(tmp_path: Path) -> None:
    """A header line is skipped and quoted fields keep their commas."""
    path = tmp_path / "t.csv"
    path.write_text('symbol,vendor_data\nBHP,"{""a"": ""1,2""}"\n')
    rows, fields, ordinals = _rows(path, 2, header=True)
    assert fields == [["BHP", '{"a": "1,2"}']]
    assert rows.line_numbers(ordinals) == [2]
