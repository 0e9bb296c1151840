"""Render command results as a text table (rich), JSON or CSV, and errors in the same mode."""

from __future__ import annotations

import csv
import dataclasses
import functools
import io
import os
import sys
from collections.abc import Callable, Sequence
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import orjson
import typer
from rich.console import Console
from rich.table import Table

from k2.domain.time import utc_text
from k2.errors import ConfigurationError, InvalidInputError, K2Error, NotFoundError, RetryableError

if TYPE_CHECKING:
    import pyarrow as pa

P = ParamSpec("P")
R = TypeVar("R")

#: Width of text output that does not go to a terminal (CI logs, pipes, files), where rich would
#: otherwise assume 80 columns and fold a wide table into unreadable narrow columns. ``COLUMNS``
#: still wins.
PIPED_WIDTH = 200


def console(*, stderr: bool = False) -> Console:
    """A rich console for stdout (or stderr): the terminal's width, or :data:`PIPED_WIDTH` when
    the stream is not a terminal.
    """
    stream = sys.stderr if stderr else sys.stdout
    piped = not stream.isatty() and "COLUMNS" not in os.environ
    return Console(stderr=stderr, width=PIPED_WIDTH if piped else None)


class Format(StrEnum):
    """Output formats of data commands."""

    TEXT = "text"
    JSON = "json"
    CSV = "csv"


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return utc_text(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, list) and value and isinstance(value[0], tuple):
        return dict(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def records(data: pa.Table | Sequence[Any]) -> list[dict[str, Any]]:
    """Rows as plain dicts: decimals as exact strings, times as ISO-8601 UTC with ``Z``."""
    import pyarrow as pa

    if isinstance(data, pa.Table):
        rows = data.to_pylist()
    else:
        rows = [
            dataclasses.asdict(r) if dataclasses.is_dataclass(r) and not isinstance(r, type) else dict(r)
            for r in data
        ]
    return [{k: _plain(v) for k, v in row.items()} for row in rows]


def render(data: pa.Table | Sequence[Any], fmt: Format, *, title: str | None = None) -> None:
    """Print ``data`` (an Arrow table or a sequence of dataclasses/dicts) in ``fmt``."""
    rows = records(data)
    if fmt is Format.JSON:
        sys.stdout.write(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    columns = list(rows[0]) if rows else list(getattr(data, "column_names", []))
    if fmt is Format.CSV:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, columns, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow(
                {k: orjson.dumps(v).decode() if isinstance(v, (dict, list)) else v for k, v in row.items()}
            )
        sys.stdout.write(buffer.getvalue())
        return
    table = Table(title=title)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*("" if row[c] is None else str(row[c]) for c in columns))
    console().print(table)
    if not rows:
        console(stderr=True).print("[dim]no rows[/dim]")


def render_one(item: Any, fmt: Format, *, title: str | None = None) -> None:
    """Print one record: a key/value table in text mode, an object in JSON."""
    row = records([item])[0]
    if fmt is Format.JSON:
        sys.stdout.write(orjson.dumps(row, option=orjson.OPT_INDENT_2).decode() + "\n")
    elif fmt is Format.CSV:
        render([item], fmt)
    else:
        table = Table(title=title, show_header=False)
        table.add_column("field", style="bold")
        table.add_column("value")
        for key, value in row.items():
            table.add_row(key, "" if value is None else str(value))
        console().print(table)


def exit_code(error: K2Error) -> int:
    """Exit status for an error: 2 bad input, 3 not found, 4 retryable, 5 configuration, 1 other."""
    if isinstance(error, InvalidInputError):
        return 2
    if isinstance(error, NotFoundError):
        return 3
    if isinstance(error, RetryableError):
        return 4
    if isinstance(error, ConfigurationError):
        return 5
    return 1


def catch_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn a :class:`K2Error` raised by a command into a message on stderr and an exit code."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except K2Error as error:
            fmt = kwargs.get("fmt")
            if fmt is Format.JSON:
                payload = {"error": {"type": type(error).__name__, "message": str(error)}}
                sys.stderr.write(orjson.dumps(payload).decode() + "\n")
            else:
                console(stderr=True).print(f"[bold red]error:[/bold red] {error}", highlight=False)
            raise typer.Exit(exit_code(error)) from None

    return wrapper
