"""What the operator tools (configure.py, teardown.py) print when AWS, or the way to it, fails:
one line naming the set-up step that is missing, never a traceback."""

from __future__ import annotations

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
)

# What the tools catch around their AWS calls.
AWS_FAILURES = (BotoCoreError, ClientError)


def aws_problem(exc: Exception) -> str:
    """One line for what AWS (or the lack of it) said."""
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        return (
            "no AWS credentials found: configure them (aws configure, AWS_PROFILE or "
            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY) and run again"
        )
    if isinstance(exc, NoRegionError):
        return "no AWS region: give --region (or set AWS_REGION)"
    return " ".join(str(exc).split())


def exit_status(exc: Exception) -> int:
    """2 for a set-up that stops before anything was asked (as bad input), 1 for AWS refusing."""
    return 1 if isinstance(exc, ClientError) else 2
