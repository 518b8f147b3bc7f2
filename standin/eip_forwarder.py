"""The Elastic IP's stand-in: a loopback address that forwards to whichever LB holds the allocation.

On AWS, clients connect to the Elastic IP and EC2 delivers the traffic to the instance the address
is associated with. Here clients connect to a loopback address (127.0.2.1 by default) and this
forwarder relays each TCP connection to the private (loopback) address of the instance that moto's
`describe_addresses` says holds the allocation, polled every `poll` seconds. So "the address
moved" is what moto says, and a client sees the move as it would: its next connection lands on
the new LB. AWS's own reassociation delay is not modelled (AWS publishes no figure for it).
"""

from __future__ import annotations

import contextlib
import socket
import threading
from typing import Any

from standin.web import loopback

_BUFFER = 65536


class EipForwarder:
    def __init__(
        self,
        ec2: Any,
        allocation_id: str,
        *,
        port: int,
        address: str = "127.0.2.1",
        poll: float = 0.05,
    ) -> None:
        self.address = loopback(address)
        self.port = port
        self._ec2 = ec2
        self._allocation_id = allocation_id
        self._poll = poll
        self._holder: str | None = None  # the holder's private address
        self._stop = threading.Event()
        self._listener: socket.socket | None = None
        self._threads: list[threading.Thread] = []

    @property
    def holder(self) -> str | None:
        return self._holder

    def start(self) -> EipForwarder:
        self._refresh()
        listener = socket.create_server((self.address, self.port), reuse_port=False)
        listener.settimeout(0.2)
        self._listener = listener
        for target in (self._accept, self._follow):
            thread = threading.Thread(target=target, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
        if self._listener is not None:
            self._listener.close()

    def _refresh(self) -> None:
        found = self._ec2.describe_addresses(AllocationIds=[self._allocation_id])["Addresses"]
        instance_id = (found[0].get("InstanceId") or None) if found else None
        if instance_id is None:
            self._holder = None
            return
        reservations = self._ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
        self._holder = reservations[0]["Instances"][0].get("PrivateIpAddress")

    def _follow(self) -> None:
        while not self._stop.wait(self._poll):
            try:
                self._refresh()
            except Exception:  # noqa: BLE001 - moto busy or stopping: keep the last holder
                continue

    def _accept(self) -> None:
        assert self._listener is not None
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._relay, args=(client,), daemon=True).start()

    def _relay(self, client: socket.socket) -> None:
        holder = self._holder
        if holder is None:
            client.close()
            return
        try:
            upstream = socket.create_connection((holder, self.port), timeout=1.0)
        except OSError:
            client.close()  # the holder is down: the client sees the connection fail
            return
        upstream.settimeout(None)
        client.settimeout(None)
        back = threading.Thread(target=_pipe, args=(upstream, client), daemon=True)
        back.start()
        _pipe(client, upstream)
        back.join(timeout=5)
        for sock in (client, upstream):
            sock.close()


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    # A reset on either side ends the relay; the other side then sees the connection end.
    with contextlib.suppress(OSError):
        while chunk := source.recv(_BUFFER):
            sink.sendall(chunk)
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)
