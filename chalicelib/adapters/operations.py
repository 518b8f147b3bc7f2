"""Which AWS operations write: every operation of every service, except its reads.

One rule, kept apart from the benchmarks and the tests that share it: bench/calls.py counts the
writes of a run with it, the in-memory fakes log them (tests/kit), and the write-path check
(tests/static/test_write_path.py) refuses them outside the executor and the adapters.
"""

from __future__ import annotations

READ_PREFIXES = ("Describe", "List", "Get")


def is_write(operation: str) -> bool:
    """`operation` as AWS names it (`ChangeResourceRecordSets`); anything not a read is a write."""
    return not operation.startswith(READ_PREFIXES)
