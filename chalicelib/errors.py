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


class ChangeRejected(AwsError):
    """A compare-and-swap was rejected: Route 53 refused a change batch, or the Elastic IP moved.

    Rejected is all it says. Route 53 refuses a batch whose DELETE no longer matches (stale), a
    batch it will never take (a CNAME at the name, a name outside the zone: permanent), and the
    retry of a batch that went through but whose answer was lost, with the same code. The job
    judges which by reading the records again (core/rejections.py).
    """


class WorldNotRead(LbfError):
    """The inventory, records or parameters could not be read: the run acts on nothing."""


class ProberFault(LbfError):
    """A probe path could not answer for its round (the prober function failed, was throttled,
    timed out or answered malformed): a fault on the prober's side, not a verdict on targets."""


class DomainNotOwned(WorldNotRead):
    """The domain's `_lbf` TXT names another cluster (or its records hold another cluster's
    instances): this run writes nothing. A configuration error, exit 2 on the command line.

    A WorldNotRead, so that any caller which acts on nothing when the world cannot be read acts
    on nothing here too; the callers that say "bad configuration" catch it first.
    """


class ZoneNotFound(DomainNotOwned):
    """LBF_HOSTED_ZONE_ID names no hosted zone this account can read (a typo, another account's
    zone): a configuration error like a domain another cluster owns, refused the same way, exit 2
    on the command line and the configuration-error metric in a function, not a failed read that
    would fail every minute as if AWS were down."""
