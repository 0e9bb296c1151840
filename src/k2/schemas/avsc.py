"""Avro schema files shipped as package data, ``avro/<record>.v<N>.avsc``, loaded by name."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from k2.errors import NotFoundError
from k2.schemas.market import RECORDS
from k2.schemas.record import Record

AVRO_PACKAGE = "k2.schemas.avro"


def avsc_name(record: Record) -> str:
    """The file name of a record's Avro schema."""
    return f"{record.name.lower()}.v{record.version}.avsc"


def render_avsc(record: Record) -> str:
    """The text of a record's ``.avsc`` file, as generated from its declaration."""
    return json.dumps(record.avro_schema(), indent=2) + "\n"


def load_avro(name: str, version: int) -> dict[str, Any]:
    """Load the Avro schema of record ``name`` at ``version``.

    Raises:
        NotFoundError: when no such schema file ships with K2.
    """
    resource = resources.files(AVRO_PACKAGE).joinpath(f"{name.lower()}.v{version}.avsc")
    if not resource.is_file():
        raise NotFoundError(f"no Avro schema {name} v{version}")
    loaded: dict[str, Any] = json.loads(resource.read_text())
    return loaded


def write_avsc(directory: Path) -> list[Path]:
    """Write every record's ``.avsc`` into ``directory``; used to refresh the package data."""
    written = []
    for record in RECORDS.values():
        path = directory / avsc_name(record)
        path.write_text(render_avsc(record))
        written.append(path)
    return written
