"""API keys and the per-key rate limit."""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from k2.api.errors import ApiKeyInvalidError, ApiKeyMissingError, RateLimitedError
from k2.errors import ConfigurationError
from k2.settings import ApiSettings


@dataclass(frozen=True, slots=True)
class Allowance:
    """The state of a caller's rate limit after a request, for the X-RateLimit-* headers."""

    limit: int
    remaining: int
    reset_epoch: int


class ApiKeys:
    """The configured keys; lookups compare in constant time against every key."""

    def __init__(self, settings: ApiSettings) -> None:
        self._keys = [(key.encode(), name) for key, name in settings.key_names().items()]

    def caller(self, presented: str | None) -> str:
        """The name of the key ``presented``.

        Raises:
            ApiKeyMissingError: when no key was sent.
            ApiKeyInvalidError: when it matches no configured key.
        """
        if not presented:
            raise ApiKeyMissingError("send your API key in the X-API-Key header")
        candidate = presented.encode()
        found: str | None = None
        for key, name in self._keys:
            if hmac.compare_digest(key, candidate):
                found = name
        if found is None:
            raise ApiKeyInvalidError("the X-API-Key header does not hold a valid key")
        return found


class RateLimiter:
    """A moving-window limit per key name, kept in this process's memory."""

    def __init__(self, settings: ApiSettings) -> None:
        try:
            self._item: RateLimitItem = parse(settings.rate_limit)
        except ValueError as error:
            raise ConfigurationError(f"K2_API_RATE_LIMIT is not a rate limit: {error}") from error
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    def hit(self, caller: str) -> Allowance:
        """Count one request of ``caller``.

        Raises:
            RateLimitedError: when the caller is over the limit.
        """
        allowed = self._limiter.hit(self._item, caller)
        stats = self._limiter.get_window_stats(self._item, caller)
        allowance = Allowance(self._item.amount, stats.remaining, int(stats.reset_time))
        if not allowed:
            retry = max(1, int(stats.reset_time - time.time()) + 1)
            raise RateLimitedError(f"rate limit of {self._item} exceeded; retry in {retry} s", retry)
        return allowance
