import uuid

from hypothesis import given
from hypothesis import strategies as st

from k2.domain.identity import message_id, message_ids, natural_key


def test_same_key_gives_same_id() -> None:
    """Loading the same source record twice must produce the same message id."""
    assert message_id("ASX", "trade", "ASX-BHP-20140310-17") == message_id(
        "ASX", "trade", "ASX-BHP-20140310-17"
    )


def test_neighbouring_sequences_get_different_ids() -> None:
    """Same-millisecond trades differ only by sequence and must not collide."""
    ids = {message_id("ASX", "trade", f"ASX-BHP-20140310-{i}") for i in range(10_000)}
    assert len(ids) == 10_000


@given(st.lists(st.text(min_size=0, max_size=20), min_size=1, max_size=5))
def test_id_is_a_version_3_rfc_uuid(parts: list[str]) -> None:
    """Every message id parses as an RFC 4122 UUID of version 3."""
    parsed = uuid.UUID(message_id(*parts))
    assert parsed.version == 3
    assert parsed.variant == uuid.RFC_4122


@given(st.lists(st.lists(st.text(max_size=20), min_size=1, max_size=4), max_size=30))
def test_many_ids_at_once_are_the_ids_one_at_a_time(keys: list[list[str]]) -> None:
    """The batch form gives each key the id :func:`message_id` gives it, in order."""
    assert message_ids([natural_key(*parts) for parts in keys]).to_pylist() == [message_id(*p) for p in keys]
