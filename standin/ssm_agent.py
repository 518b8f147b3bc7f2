"""A stand-in for the SSM agent on each LB, for moto. Demo and test plumbing only.

moto records a SendCommand and reports it Success at once, without running anything. This agent
hooks moto's in-process backend: a command for the backend-push document becomes Pending, is run
on the matching local LB (the real script from infra/ against a real HAProxy), and then reports
the script's real outcome, so that `lbf:backends` is set only after the list was really applied.
"""

from __future__ import annotations

import datetime as dt
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from moto.ssm import models as ssm_models

# An applier runs the document on one LB: (backends, checksum) -> (succeeded, output).
Applier = Callable[[str, str], tuple[bool, str]]


@dataclass
class Execution:
    command_id: str
    instance_id: str
    backends: str
    checksum: str
    status: str = "Pending"
    output: str = ""


class LocalSsmAgent:
    def __init__(self, document: str) -> None:
        self.document = document
        self.appliers: dict[str, Applier] = {}
        self.executions: list[Execution] = []
        self._queue: queue.Queue[tuple[Any, Execution] | None] = queue.Queue()
        self._original: Any = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def register(self, instance_id: str, applier: Applier) -> None:
        with self._lock:
            self.appliers[instance_id] = applier

    def forget(self, instance_id: str) -> None:
        with self._lock:
            self.appliers.pop(instance_id, None)

    def install(self) -> LocalSsmAgent:
        backend_class = ssm_models.SimpleSystemManagerBackend
        original = backend_class.send_command
        self._original = original
        agent = self

        def send_command(backend: Any, *args: Any, **kwargs: Any) -> Any:
            requested = list(kwargs.get("instance_ids") or [])  # moto extends the list it gets
            command = original(backend, *args, **kwargs)
            if command.document_name == agent.document:
                agent._accept(command, requested)
            return command

        backend_class.send_command = send_command  # type: ignore[method-assign,assignment]
        return self

    def uninstall(self) -> None:
        if self._original is not None:
            ssm_models.SimpleSystemManagerBackend.send_command = self._original  # type: ignore[method-assign]
            self._original = None
        self.stop()

    def start(self) -> LocalSsmAgent:
        """Run commands in the background, as a real agent does."""
        self._thread = threading.Thread(target=self._work, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=30)
            self._thread = None

    def _accept(self, command: Any, requested: list[str]) -> None:
        # moto may add every instance to a command; the agent answers only for the one asked.
        instance_ids = [i for i in requested if i in command.instance_ids] or command.instance_ids
        command.status = "Pending"
        command.status_details = "Pending"
        command.invocations = []  # GetCommandInvocation: InvocationDoesNotExist, as in AWS
        for instance_id in instance_ids:
            execution = Execution(
                command_id=command.command_id,
                instance_id=instance_id,
                backends=(command.parameters.get("Backends") or [""])[0],
                checksum=(command.parameters.get("Checksum") or [""])[0],
            )
            with self._lock:
                self.executions.append(execution)
            self._queue.put((command, execution))

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            self._run(*item)

    def _run(self, command: Any, execution: Execution) -> None:
        with self._lock:
            applier = self.appliers.get(execution.instance_id)
        command.status = "InProgress"
        if applier is None:
            ok, output, status = False, "no agent answers on this instance", "Undeliverable"
        else:
            ok, output = applier(execution.backends, execution.checksum)
            status = "Success" if ok else "Failed"
        execution.status, execution.output = status, output
        invocation = command.invocation_response(execution.instance_id, "aws:runShellScript")
        invocation.update(
            {
                "Status": status,
                "StatusDetails": status,
                "ResponseCode": 0 if ok else 1,
                "StandardOutputContent": output[-24000:],  # SSM truncates output there
                "ExecutionEndDateTime": dt.datetime.now(dt.UTC).isoformat(),
            }
        )
        command.invocations = [*command.invocations, invocation]
        command.status = status
        command.status_details = status
