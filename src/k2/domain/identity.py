"""Deterministic record identity.

A ``message_id`` is a name-based UUID of the record's natural key, so the same source record
always gets the same id and loading it twice can be detected: the 128-bit MD5 of the key, read
little-endian (as DuckDB's ``md5_number`` reads it, which lets bulk paths compute it in SQL),
with the version-3 and RFC 4122 variant bits set. A test keeps the two in step.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence

import numpy as np
import pyarrow as pa

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


_HEX_DIGITS = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
#: Where a UUID's text puts its dashes, as positions in its 32 hex digits.
_DASHES = [8, 12, 16, 20]
_UUID_CHARS = 36


def message_ids(keys: Sequence[str]) -> pa.Array:
    """The message ids of many records at once, from their joined natural keys
    (:func:`natural_key`): the ids :func:`message_id` gives, as an Arrow string array.
    """
    n = len(keys)
    md5 = hashlib.md5
    digests = b"".join([md5(key.encode(), usedforsecurity=False).digest() for key in keys])
    # The digest read little-endian is the UUID's number: its big-endian bytes are the digest reversed.
    octets = np.frombuffer(digests, dtype=np.uint8).reshape(n, 16)[:, ::-1].copy()
    octets[:, 6] = (octets[:, 6] & 0x0F) | 0x30  # version 3
    octets[:, 8] = (octets[:, 8] & 0x3F) | 0x80  # RFC 4122 variant
    digits = _HEX_DIGITS[np.stack((octets >> 4, octets & 0x0F), axis=2).reshape(n, 32)]
    text = np.insert(digits, _DASHES, ord("-"), axis=1)
    offsets = np.arange(0, (n + 1) * _UUID_CHARS, _UUID_CHARS, dtype=np.int32)
    return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(text.tobytes())])
