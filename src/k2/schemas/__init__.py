"""Record declarations and their Arrow, Avro and Iceberg forms."""

from k2.schemas.market import DIVIDEND, INSTRUMENT, QUOTE, RECORDS, SPLIT, TRADE
from k2.schemas.record import Column, Kind, Record
from k2.schemas.registry import load_avro

__all__ = [
    "DIVIDEND",
    "INSTRUMENT",
    "QUOTE",
    "RECORDS",
    "SPLIT",
    "TRADE",
    "Column",
    "Kind",
    "Record",
    "load_avro",
]
