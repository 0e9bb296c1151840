from hypothesis import settings

pytest_plugins = ["tests.fixtures.lakes", "tests.fixtures.platform", "tests.fixtures.private_platform"]

# Tests never assert timings: Hypothesis's per-example deadline failed a property on a cold DuckDB
# start under CI load, so it is off for every property test.
settings.register_profile("k2", deadline=None)
settings.load_profile("k2")
