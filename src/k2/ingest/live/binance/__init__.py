"""Binance spot: its public market streams and REST recent-trades call.

:mod:`.protocol` parses and normalises Binance's frames into K2's rows; :mod:`.feed` keeps the
WebSocket connection and hands rows to a :class:`~k2.ingest.live.output.FeedOutput`; :mod:`.gaps`
finds trade-id gaps and backfills them through REST; :mod:`.server` is a local server speaking
the same protocol, replaying :mod:`.tapes` (a seeded synthetic market or a recording), for tests,
`k2 stream playback` and the offline demo.
"""
