"""SSM: Parameter Store values and the backend push through Run Command."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from chalicelib.adapters.clients import translated
from chalicelib.core.model import Push
from chalicelib.errors import AwsError

# The checksum travels in the command's comment, so that a run finds the pushes of an earlier
# run (that may have died mid-push) with ListCommands and never pushes the same list twice.
COMMENT_PREFIX = "lbf-backends "


class SsmParameters:
    def __init__(self, client: Any) -> None:
        self._client = client

    def read(self, names: Sequence[str]) -> dict[str, str]:
        """The values of those that exist, in one call (GetParameters takes up to 10 names)."""
        with translated("ssm", "GetParameters"):
            response = self._client.get_parameters(Names=list(names))
        return {p["Name"]: p["Value"] for p in response.get("Parameters", [])}

    def put(self, name: str, value: str) -> None:
        with translated("ssm", "PutParameter"):
            # Intelligent tiering: a long backend list becomes an advanced (8 KB) parameter.
            self._client.put_parameter(
                Name=name, Value=value, Type="String", Overwrite=True, Tier="Intelligent-Tiering"
            )


class SsmHistory:
    def __init__(self, client: Any) -> None:
        self._client = client

    def read(self, name: str) -> list[tuple[float, str]]:
        """Every stored version of the parameter, oldest first: (LastModifiedDate, Value).

        Parameter Store keeps the last 100 versions; a parameter never written has none.
        """
        versions: list[tuple[float, str]] = []
        try:
            with translated("ssm", "GetParameterHistory"):
                pages = self._client.get_paginator("get_parameter_history").paginate(Name=name)
                for page in pages:
                    versions += [
                        (p["LastModifiedDate"].timestamp(), p["Value"])
                        for p in page.get("Parameters", [])
                    ]
        except AwsError as exc:
            if exc.code == "ParameterNotFound":
                return []
            raise
        return versions


class SsmPushes:
    def __init__(self, client: Any, document: str, *, log_group: str | None = None) -> None:
        self._client = client
        self._document = document
        self._log_group = log_group

    def send(self, instance_id: str, backends: str, checksum: str, *, now: float) -> Push:
        # The push's output also goes to CloudWatch Logs (streams <command>/<instance>/...): SSM
        # keeps at most 24,000 characters of it, and only for a while, and reading it there
        # needs the command's id. The LB's own role writes the log, not the caller.
        extra: dict[str, Any] = {}
        if self._log_group is not None:
            extra["CloudWatchOutputConfig"] = {
                "CloudWatchLogGroupName": self._log_group,
                "CloudWatchOutputEnabled": True,
            }
        with translated("ssm", "SendCommand"):
            response = self._client.send_command(
                InstanceIds=[instance_id],
                DocumentName=self._document,
                Comment=COMMENT_PREFIX + checksum,
                Parameters={"Backends": [backends], "Checksum": [checksum]},
                TimeoutSeconds=600,
                **extra,
            )
        return Push(
            command_id=response["Command"]["CommandId"],
            instance_id=instance_id,
            checksum=checksum,
            status="Pending",
            requested_at=now,
        )

    def recent(self, *, since: float) -> list[Push]:
        """Backend pushes requested since then, newest state SSM reports for each."""
        found: list[Push] = []
        after = dt.datetime.fromtimestamp(since, tz=dt.UTC)
        filters = [
            {"key": "DocumentName", "value": self._document},
            {"key": "InvokedAfter", "value": after.strftime("%Y-%m-%dT%H:%M:%SZ")},
        ]
        with translated("ssm", "ListCommands"):
            for page in self._client.get_paginator("list_commands").paginate(Filters=filters):
                for item in page.get("Commands", []):
                    command = self._parse(item, since)
                    if command is not None:
                        found.append(command)
        return found

    def _parse(self, item: dict[str, Any], since: float) -> Push | None:
        comment = str(item.get("Comment", ""))
        instances = item.get("InstanceIds", [])
        requested = item.get("RequestedDateTime")
        at = requested.timestamp() if isinstance(requested, dt.datetime) else 0.0
        # Filters are applied here too: not every Run Command implementation honours them.
        if (
            item.get("DocumentName") != self._document
            or not comment.startswith(COMMENT_PREFIX)
            or len(instances) != 1
            or at < since
        ):
            return None
        return Push(
            command_id=item["CommandId"],
            instance_id=instances[0],
            checksum=comment.removeprefix(COMMENT_PREFIX),
            status=str(item.get("Status", "Pending")),
            requested_at=at,
        )

    def status(self, command: Push) -> str:
        """The invocation's status on its LB. Right after sending it may not exist yet: Pending."""
        try:
            with translated("ssm", "GetCommandInvocation"):
                response = self._client.get_command_invocation(
                    CommandId=command.command_id, InstanceId=command.instance_id
                )
        except AwsError as exc:
            if exc.code == "InvocationDoesNotExist":
                return "Pending"
            raise
        return str(response.get("Status", "Pending"))
