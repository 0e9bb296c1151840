pytest_plugins = ["tests.fixtures.lakes", "tests.fixtures.platform"]
