"""A client's view of an API endpoint that moves: a local TCP port that follows it.

Clients of a real control plane reach its endpoint by a name or a virtual address that is moved
to the new endpoint host (DNS, keepalived). The lab has neither, so the load's kubeconfig points
here instead: each new connection goes to the first of --target that accepts one, in order (the
old endpoint first, then the new). While the old endpoint runs, every write goes through it; once
it stops, its port refuses connections and the next attempt reaches the new endpoint. TLS passes
through untouched (the API servers' certificate holds 127.0.0.1), as it does through HAProxy.

Writes the port it listens on to --port-file; runs until SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from pathlib import Path

CONNECT_TIMEOUT = 2.0


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            writer.close()


async def connect_first(targets: list[tuple[str, int]]) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
    for host, port in targets:
        try:
            return await asyncio.wait_for(asyncio.open_connection(host, port), CONNECT_TIMEOUT)
        except (OSError, TimeoutError):
            continue
    return None


async def serve(listen: str, targets: list[tuple[str, int]], port_file: Path) -> None:
    async def handle(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        upstream = await connect_first(targets)
        if upstream is None:
            client_writer.close()
            return
        up_reader, up_writer = upstream
        await asyncio.gather(pipe(client_reader, up_writer), pipe(up_reader, client_writer))

    server = await asyncio.start_server(handle, listen, 0)
    port_file.write_text(str(server.sockets[0].getsockname()[1]))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def target(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", default="127.0.0.1")
    parser.add_argument("--target", type=target, action="append", required=True, help="HOST:PORT, in order")
    parser.add_argument("--port-file", type=Path, required=True)
    args = parser.parse_args()
    asyncio.run(serve(args.listen, args.target, args.port_file))


if __name__ == "__main__":
    main()
