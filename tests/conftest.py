"""The test kit's fixtures, for every test: `scripted_server` and `backoff` (tests/kit/scripted_aws.py)."""

pytest_plugins = ["tests.kit.scripted_aws"]
