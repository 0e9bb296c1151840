pytest_plugins = ["tests.fixtures.lakes"]
