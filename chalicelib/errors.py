"""The project's own errors. Adapters translate botocore's into these (`raise ... from exc`)."""

from __future__ import annotations


class LbfError(Exception):
    """Base of every error the controller reports."""


class AwsError(LbfError):
    """An AWS call failed after botocore's own retries."""

    def __init__(self, service: str, operation: str, code: str, message: str) -> None:
        super().__init__(f"{service}.{operation}: {code}: {message}")
        self.service = service
        self.operation = operation
        self.code = code


class StaleView(AwsError):
    """Route 53 rejected a compare-and-swap: the record is no longer what this run read."""


class ViewNotLoaded(LbfError):
    """The inventory, records or parameters could not be read: the run acts on nothing."""


class ProberFault(LbfError):
    """A probe path could not answer for its round (the prober function failed, was throttled,
    timed out or answered malformed): a fault on the prober's side, not a verdict on targets."""
