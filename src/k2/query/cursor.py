"""Opaque page cursors bound to a snapshot and to the filters of the query that issued them."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

import orjson

from k2.query.errors import InvalidCursorError


@dataclass(frozen=True, slots=True)
class PageCursor:
    """Where the next page starts: after the row with this sort key, in this snapshot."""

    snapshot_id: int
    fingerprint: str
    timestamp_us: int
    sequence: int
    message_id: str

    def encode(self) -> str:
        """The cursor as a URL-safe token."""
        raw = orjson.dumps(
            [self.snapshot_id, self.fingerprint, self.timestamp_us, self.sequence, self.message_id]
        )
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str, fingerprint: str) -> PageCursor:
        """Parse ``token`` and check it was issued for a query with ``fingerprint``.

        Raises:
            InvalidCursorError: for a malformed token or one from a query with other filters.
        """
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            snapshot_id, issued_for, ts, seq, mid = orjson.loads(raw)
            cursor = cls(int(snapshot_id), str(issued_for), int(ts), int(seq), str(mid))
        except (ValueError, TypeError, orjson.JSONDecodeError):
            raise InvalidCursorError("malformed cursor") from None
        if cursor.fingerprint != fingerprint:
            raise InvalidCursorError("cursor was issued for a query with other filters")
        return cursor


def fingerprint(*parts: object) -> str:
    """A short stable digest of a query's filters."""
    return hashlib.sha256(orjson.dumps([str(p) for p in parts])).hexdigest()[:16]
