"""A bare trio byte relay: the floor for any trio proxy.

Accept a connection, connect to the upstream, and run two tasks that copy
`receive_some(65536)` -> `send_all` until either side closes. No framing, no parsing, no
logging per message: whatever a trio proxy does on top of this costs more than this.

    python bench/bare_relay.py --listen 127.0.0.1:0 --upstream 127.0.0.1:5432

The first line on stdout is the bound port (then a flush), so a harness that asked for
port 0 reads the real one instead of guessing.
"""

from __future__ import annotations

import argparse
import sys

import trio

BUFSIZE = 65536


def hostport(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    try:
        return host, int(port)
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad port in {text!r}") from None


async def _pump(src: trio.SocketStream, dst: trio.SocketStream) -> None:
    try:
        while True:
            data = await src.receive_some(BUFSIZE)
            if not data:
                break
            await dst.send_all(data)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass


async def _handle(client: trio.SocketStream, upstream: tuple[str, int]) -> None:
    try:
        try:
            server = await trio.open_tcp_stream(*upstream)
        except OSError:
            return
        try:
            async with trio.open_nursery() as nursery:
                async def one_way(src, dst):
                    await _pump(src, dst)
                    # Either side ending ends the session, as a proxy would.
                    nursery.cancel_scope.cancel()

                nursery.start_soon(one_way, client, server)
                nursery.start_soon(one_way, server, client)
        finally:
            await trio.aclose_forcefully(server)
    finally:
        await trio.aclose_forcefully(client)


async def serve(listen: tuple[str, int], upstream: tuple[str, int]) -> None:
    listeners = await trio.open_tcp_listeners(listen[1], host=listen[0])
    port = listeners[0].socket.getsockname()[1]
    print(port, flush=True)

    async def handler(stream: trio.SocketStream) -> None:
        await _handle(stream, upstream)

    await trio.serve_listeners(handler, listeners)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listen", type=hostport, default=("127.0.0.1", 0))
    parser.add_argument("--upstream", type=hostport, required=True)
    args = parser.parse_args(argv)
    try:
        trio.run(serve, args.listen, args.upstream)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
