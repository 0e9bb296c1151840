"""Deterministic record identity.

A ``message_id`` is a name-based UUID of the record's natural key, so the same source record
always gets the same id and loading it twice can be detected: the 128-bit MD5 of the key, read
little-endian (as DuckDB's ``md5_number`` reads it, which lets bulk paths compute it in SQL),
with the version-3 and RFC 4122 variant bits set. A test keeps the two in step.
"""

from __future__ import annotations

import hashlib
import uuid

KEY_SEPARATOR = "|"


def natural_key(*parts: object) -> str:
    """Join the parts of a natural key the way every K2 path does."""
    return KEY_SEPARATOR.join(str(part) for part in parts)


def message_id(*parts: object) -> str:
    """The message id of the record whose natural key is ``parts``.

    Args:
        parts: venue, record kind and whatever identifies the record at its source, e.g.
            ``("ASX", "trade", "BHP", "2014-03-10", 17)``.

    Returns:
        A UUID string.
    """
    digest = hashlib.md5(natural_key(*parts).encode(), usedforsecurity=False).digest()
    number = int.from_bytes(digest, "little")
    number = (number & ~(0xF << 76) & ~(0x3 << 62)) | (0x3 << 76) | (0x2 << 62)
    return str(uuid.UUID(int=number))
