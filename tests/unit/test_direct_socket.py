"""DirectSocket (wireproxy/streams.py): the pumps' socket calls without trio's per-call
scheduling steps, on real loopback TCP connections."""

from __future__ import annotations

import socket

import pytest
import trio
import trio.testing

from wireproxy.streams import BUFSIZE, DirectSocket, OrderedWriter, direct


async def tcp_pair():
    listener = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
    port = listener.socket.getsockname()[1]
    client = await trio.open_tcp_stream("127.0.0.1", port)
    server = await listener.accept()
    await listener.aclose()
    return client, server


async def test_a_socket_stream_gets_the_direct_calls_and_other_streams_stay_as_they_are():
    client, server = await tcp_pair()
    assert isinstance(direct(client), DirectSocket)      # fails if trio stops having `_sock`
    memory, _ = trio.testing.memory_stream_pair()
    assert direct(memory) is memory
    await client.aclose()
    await server.aclose()


async def test_bytes_both_ways_and_eof():
    client, server = await tcp_pair()
    a, b = direct(client), direct(server)
    await a.send_all(b"Q\0\0\0\5x")
    assert await b.receive_some() == b"Q\0\0\0\5x"
    await b.send_all(b"Z\0\0\0\5I")
    assert await a.receive_some() == b"Z\0\0\0\5I"
    await client.aclose()
    assert await b.receive_some() == b""
    await server.aclose()


async def test_a_send_larger_than_the_socket_buffers_waits_for_the_reader_and_arrives_whole():
    client, server = await tcp_pair()
    client.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    a, b = direct(client), direct(server)
    payload = bytes(range(256)) * 40_000              # ~10 MB: many partial sends
    got = bytearray()

    async def read_all():
        while len(got) < len(payload):
            chunk = await b.receive_some(BUFSIZE)
            assert chunk
            got.extend(chunk)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(read_all)
        await a.send_all(payload)
    assert bytes(got) == payload
    await client.aclose()
    await server.aclose()


async def test_closing_the_stream_under_a_waiting_receive_raises_closed():
    client, server = await tcp_pair()
    b = direct(server)
    raised = []

    async def receive():
        try:
            await b.receive_some()
        except trio.ClosedResourceError as exc:
            raised.append(exc)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(receive)
        await trio.testing.wait_all_tasks_blocked()
        await server.aclose()
    assert len(raised) == 1
    with pytest.raises(trio.ClosedResourceError):
        await b.receive_some()
    await client.aclose()


async def test_a_reset_connection_is_broken():
    client, server = await tcp_pair()
    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
    await client.aclose()                            # linger 0: the peer gets RST
    b = direct(server)
    with pytest.raises(trio.BrokenResourceError):
        while True:
            await b.send_all(b"x" * 65536)
            await b.receive_some()
    await server.aclose()


async def test_a_read_after_a_full_one_is_still_a_checkpoint():
    """A result streaming in is read without waiting, yet every read still yields (and can be
    cancelled): one session's large result cannot starve the others."""
    client, server = await tcp_pair()
    a, b = direct(client), direct(server)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(a.send_all, b"x" * (BUFSIZE * 8))
        while len(await b.receive_some(BUFSIZE)) < BUFSIZE:   # until one read fills the buffer
            pass
        await trio.sleep(0.05)                                # more is in the socket now
        with trio.CancelScope() as scope:
            scope.cancel()
            await b.receive_some(BUFSIZE)
        assert scope.cancelled_caught
        nursery.cancel_scope.cancel()
    await client.aclose()
    await server.aclose()


async def test_ordered_writer_keeps_call_order_over_a_direct_socket():
    client, server = await tcp_pair()
    writer, reader = OrderedWriter(direct(client)), direct(server)
    async with trio.open_nursery() as nursery:
        for i in range(20):
            nursery.start_soon(writer.send, bytes([i]) * 100_000)
            await trio.testing.wait_all_tasks_blocked()
        got = bytearray()
        while len(got) < 2_000_000:
            got.extend(await reader.receive_some())
    assert bytes(got) == b"".join(bytes([i]) * 100_000 for i in range(20))
    await client.aclose()
    await server.aclose()
