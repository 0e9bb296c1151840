from pathlib import Path

import pytest
from hypothesis import settings

pytest_plugins = [
    "tests.fixtures.browser",
    "tests.fixtures.lakes",
    "tests.fixtures.platform",
    "tests.fixtures.private_platform",
    "tests.fixtures.prometheus",
    "tests.fixtures.supervised_sink",
]

# Tests never assert timings: Hypothesis's per-example deadline failed a property on a cold DuckDB
# start under CI load, so it is off for every property test.
settings.register_profile("k2", deadline=None)
settings.load_profile("k2")

#: A test's tier follows its directory as well as its markers, so a test that forgets its marker
#: cannot pull services into the unit tier (`make test-quick`).
TIERS = {"integration": pytest.mark.integration, "e2e": pytest.mark.e2e}
TESTS = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test under ``tests/integration`` and ``tests/e2e`` with its directory's tier."""
    for item in items:
        parts = item.path.relative_to(TESTS).parts if item.path.is_relative_to(TESTS) else ()
        if parts and parts[0] in TIERS:
            item.add_marker(TIERS[parts[0]])
