pytest_plugins = ["tidb_sandbox.testing"]
