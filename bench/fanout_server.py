"""The web targets of the fan-out benchmark: one process, one listening socket per loopback address.

`python -m bench.fanout_server SPEC.json` binds every address in the spec on one port, prints
`{"port": N}` once all listen, and serves until terminated (or `lifetime` seconds at most, so a
forgotten server cannot outlive the benchmark). A target answers `GET` with 200; a black hole
accepts and never answers, as a hung server or a dropped reply does, so the prober's deadline is
the only thing that ends the probe.

It is its own process so that serving 2,000 targets does not compete for the measuring process's
interpreter; on a 2-core machine each gets a core.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
from pathlib import Path

_ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n"


class _Answers(asyncio.Protocol):
    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._received = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        self._received += data
        if b"\r\n\r\n" in self._received and self._transport is not None:
            self._transport.write(_ANSWER)
            self._transport.close()


class _BlackHole(asyncio.Protocol):
    """Accepts, reads whatever comes, never answers; the connection ends when the prober's does."""

    def __init__(self) -> None:
        self._transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # held, so the connection stays open

    def data_received(self, data: bytes) -> None:
        return


async def _serve(spec: dict[str, object]) -> None:
    loop = asyncio.get_running_loop()
    targets = spec["targets"]
    assert isinstance(targets, list)
    lifetime = float(str(spec.get("lifetime", 600)))
    port = int(str(spec.get("port", 0)))
    servers = []
    for address, black_hole in targets:
        factory = _BlackHole if black_hole else _Answers
        server = await loop.create_server(factory, str(address), port, backlog=256)
        if port == 0:
            # Every address takes the port the first one got: one port, many hosts, like EC2.
            port = server.sockets[0].getsockname()[1]
        servers.append(server)
    print(json.dumps({"port": port}), flush=True)
    await asyncio.sleep(lifetime)


def main() -> None:
    # Listening sockets plus open connections exceed the default 1,024 descriptors.
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    spec = json.loads(Path(sys.argv[1]).read_text())
    asyncio.run(_serve(spec))


if __name__ == "__main__":
    main()
