#!/usr/bin/python3
"""test/net/peers/asyncio_peer.py — a stream peer built on CPython's asyncio.

test/net/interop_test.cpp starts it to talk to evloop over real TCP, so that
evloop's transports are checked against an implementation no one here wrote.
Standard library only; run it with Debian's /usr/bin/python3.

    asyncio_peer.py server MODE [N] --port-file F [--host H] [--connections K]
    asyncio_peer.py client MODE [N] --host H --port P

The server listens on H (127.0.0.1 or ::1) port 0, writes the port to F, serves
K connections (one at a time or together) and exits. The exit status is 0 only
if every connection did what its mode expects. Modes, one per connection:

  sink-sha256    read until EOF, reply "<sha256 hex> <count>\\n", close
  source N       send N pattern bytes, write_eof, expect the sink reply for them
  echo           echo every byte; at EOF add the sink reply, close
  half-close N   send N pattern bytes, write_eof, read until the peer's EOF:
                 expect those bytes back followed by the sink reply (what an
                 echo peer sends)
  reset N        send pattern bytes and read for N ms, then close with
                 SO_LINGER 0, so the kernel sends RST instead of FIN
  slow-reader    read 1 KiB every 10 ms (small receive buffer) until EOF, then
                 reply like sink-sha256
  many N         (client only) open N connections at once, then send
                 "ping <i>\\n" on each and expect "pong <i>\\n"

The pattern is a 65,521-byte block (a prime, so no power-of-two chunk boundary
lines up with it) repeated; the test file builds the same block.
"""
import argparse
import asyncio
import hashlib
import os
import resource
import socket
import struct
import sys

PATTERN_SIZE = 65521
READ_SIZE = 256 * 1024


def make_pattern():
    # A 32-bit LCG's top byte: trivially mirrored in C++, and varied enough
    # that a dropped, repeated or reordered chunk changes the checksum.
    x, block = 0x12345678, bytearray(PATTERN_SIZE)
    for i in range(PATTERN_SIZE):
        x = (x * 1103515245 + 12345) & 0xFFFFFFFF
        block[i] = x >> 24
    return bytes(block)


PATTERN = make_pattern()


def pattern_bytes(n):
    whole, rest = divmod(n, PATTERN_SIZE)
    return PATTERN * whole + PATTERN[:rest]


def sink_reply(data_hash, count):
    return f"{data_hash.hexdigest()} {count}\n".encode()


def check(condition, what):
    if not condition:
        raise AssertionError(what)


async def send_pattern(writer, n):
    """Sends n pattern bytes, honouring flow control; returns their sha256."""
    digest = hashlib.sha256()
    left = n
    while left:
        piece = PATTERN[:min(left, PATTERN_SIZE)]
        writer.write(piece)
        digest.update(piece)
        left -= len(piece)
        await writer.drain()
    return digest


async def read_to_eof(reader, digest=None, keep=False):
    """Reads until EOF; returns (count, kept bytes)."""
    count, kept = 0, bytearray()
    while data := await reader.read(READ_SIZE):
        count += len(data)
        if digest:
            digest.update(data)
        if keep:
            kept += data
    return count, bytes(kept)


async def sink_sha256(reader, writer, _n):
    digest = hashlib.sha256()
    count, _ = await read_to_eof(reader, digest)
    writer.write(sink_reply(digest, count))
    await writer.drain()


async def source(reader, writer, n):
    digest = await send_pattern(writer, n)
    writer.write_eof()
    reply = await reader.readline()
    check(reply == sink_reply(digest, n), f"source: peer replied {reply!r}")


async def echo(reader, writer, _n):
    digest, count = hashlib.sha256(), 0
    while data := await reader.read(READ_SIZE):
        digest.update(data)
        count += len(data)
        writer.write(data)
        await writer.drain()
    writer.write(sink_reply(digest, count))
    await writer.drain()


async def half_close(reader, writer, n):
    async def send():
        digest = await send_pattern(writer, n)
        writer.write_eof()
        return digest

    # Read while sending: an echoing peer would otherwise block on a full pipe.
    digest, (_, received) = await asyncio.gather(send(), read_to_eof(reader, keep=True))
    check(received == pattern_bytes(n) + sink_reply(digest, n),
          f"half-close: got {len(received)} bytes, not the echo and the reply")


async def reset(reader, writer, milliseconds):
    async def drain_input():
        while await reader.read(READ_SIZE):
            pass

    async def keep_sending():
        while True:
            await send_pattern(writer, PATTERN_SIZE)

    jobs = [asyncio.ensure_future(drain_input()), asyncio.ensure_future(keep_sending())]
    try:
        await asyncio.sleep(milliseconds / 1000)
    finally:
        for job in jobs:
            job.cancel()
        await asyncio.gather(*jobs, return_exceptions=True)
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def slow_reader(reader, writer, _n):
    digest, count = hashlib.sha256(), 0
    while data := await reader.read(1024):
        digest.update(data)
        count += len(data)
        await asyncio.sleep(0.01)
    writer.write(sink_reply(digest, count))
    await writer.drain()


MODES = {
    "sink-sha256": sink_sha256,
    "source": source,
    "echo": echo,
    "half-close": half_close,
    "reset": reset,
    "slow-reader": slow_reader,
}


async def run_mode(mode, reader, writer, n):
    try:
        await MODES[mode](reader, writer, n)
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except OSError:
            pass  # the reset mode's own RST, or the peer's


async def serve(args):
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    if args.mode == "slow-reader":
        # Set before listen() so accepted sockets inherit it: the kernel then
        # buffers only a few KiB and the peer's writer feels the slowness.
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    listener.bind((args.host, 0))
    loop = asyncio.get_running_loop()
    finished = loop.create_future()
    failures = []
    served = 0

    async def handle(reader, writer):
        nonlocal served
        try:
            await run_mode(args.mode, reader, writer, args.n)
        except Exception as error:  # reported below; the server goes on
            failures.append(error)
        served += 1
        if served == args.connections and not finished.done():
            finished.set_result(None)

    # A StreamReader pauses its transport only past 2 * limit: with the
    # default 64 KiB it would itself soak up what the slow reader should refuse.
    limit = 1024 if args.mode == "slow-reader" else 64 * 1024
    server = await asyncio.start_server(handle, sock=listener, limit=limit, backlog=1024)
    port = listener.getsockname()[1]
    with open(args.port_file + ".tmp", "w") as f:
        f.write(f"{port}\n")
    os.rename(args.port_file + ".tmp", args.port_file)  # readers never see half a file
    async with server:
        await finished
    for error in failures:
        print(f"asyncio_peer server {args.mode}: {error!r}", file=sys.stderr)
    return not failures


async def open_one(host, port, i, opened):
    reader, writer = await asyncio.open_connection(host, port)
    opened.append(writer)  # closed by many() even if another connect fails
    return reader, writer, i


async def many(args):
    # Every connection is open before the first ping, so the server holds
    # all of them at once.
    opened = []
    try:
        conns = await asyncio.gather(*(open_one(args.host, args.port, i, opened) for i in range(args.n)))
        for _, writer, i in conns:
            writer.write(f"ping {i}\n".encode())
        for reader, _, i in conns:
            reply = await reader.readline()
            check(reply == f"pong {i}\n".encode(), f"many: connection {i} got {reply!r}")
    finally:
        for writer in opened:
            writer.close()
        await asyncio.gather(*(w.wait_closed() for w in opened), return_exceptions=True)
    return True


async def connect(args):
    if args.mode == "many":
        return await many(args)
    reader, writer = await asyncio.open_connection(args.host, args.port)
    await run_mode(args.mode, reader, writer, args.n)
    return True


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("role", choices=["server", "client"])
    parser.add_argument("mode", choices=[*MODES, "many"])
    parser.add_argument("n", nargs="?", type=int, default=0)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int)
    parser.add_argument("--port-file")
    parser.add_argument("--connections", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=30.0)
    args = parser.parse_args()

    # "many" needs an fd per connection; the soft limit is often 1024.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    work = serve(args) if args.role == "server" else connect(args)
    try:
        ok = asyncio.run(asyncio.wait_for(work, args.timeout))
    except Exception as error:
        print(f"asyncio_peer {args.role} {args.mode}: {error!r}", file=sys.stderr)
        ok = False
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
