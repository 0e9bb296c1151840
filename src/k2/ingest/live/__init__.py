"""Live venues: market data read from a venue's stream as it happens, produced to Kafka.

What every live venue shares sits here: where a feed's rows and dead letters go
(:mod:`.output`: Kafka, or a counting output for dry runs), where a restarted feed resumes
(:mod:`.resume`: the last trade ids already in Kafka) and what a feed reports while it runs
(:mod:`.status`). Each venue is a package of its own beside them — its protocol, its feed and
gap handling, and a local server that speaks its protocol for tests and offline demos
(:mod:`.binance`); a second venue is a sibling package.
"""
