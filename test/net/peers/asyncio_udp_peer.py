#!/usr/bin/python3
"""test/net/peers/asyncio_udp_peer.py — a UDP peer built on CPython's asyncio.

test/net/datagram_endpoint_test.cpp starts it so that evloop's datagram
endpoints are checked against an implementation no one here wrote.
Standard library only; run it with Debian's /usr/bin/python3.

    asyncio_udp_peer.py server --host H --port-file F --count N
    asyncio_udp_peer.py client --host H --port P --count N [--window W]

server: an echo endpoint on H (127.0.0.1 or ::1) port 0; writes the port to F
        (renamed into place, so a file that exists is whole), sends every
        datagram back to its sender, exits 0 after N echoes.
client: an endpoint connected to H:P; sends N numbered datagrams ("<i>:"
        then i % 1400 pattern bytes) with at most W in flight, and checks that
        each comes back exactly once and unchanged; exits 0 when all N did.
Either exits 1 after 20 s without finishing, saying how far it got.
"""
import argparse
import asyncio
import os
import sys

DEADLINE = 20.0


def datagram(i):
    body = bytes((i * 7 + k) & 0xFF for k in range(i % 1400))
    return b"%d:" % i + body


class Echo(asyncio.DatagramProtocol):
    def __init__(self, count, done):
        self.count, self.done, self.echoed = count, done, 0

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        self.transport.sendto(data, addr)
        self.echoed += 1
        if self.echoed == self.count and not self.done.done():
            self.done.set_result(None)

    def error_received(self, exc):
        print("server: error_received", exc, file=sys.stderr)


class Client(asyncio.DatagramProtocol):
    def __init__(self, count, window, done):
        self.count, self.window, self.done = count, window, done
        self.next, self.outstanding, self.received, self.bad = 0, set(), 0, 0

    def connection_made(self, transport):
        self.transport = transport
        while self.next < min(self.window, self.count):
            self.send_next()

    def send_next(self):
        self.outstanding.add(self.next)
        self.transport.sendto(datagram(self.next))
        self.next += 1

    def datagram_received(self, data, addr):
        i = int(data.split(b":", 1)[0])
        if i not in self.outstanding or data != datagram(i):
            self.bad += 1
            print("client: unexpected or corrupted echo", i, file=sys.stderr)
        self.outstanding.discard(i)
        self.received += 1
        if self.next < self.count:
            self.send_next()
        elif not self.outstanding and not self.done.done():
            self.done.set_result(None)

    def error_received(self, exc):
        print("client: error_received", exc, file=sys.stderr)


async def serve(args):
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    transport, proto = await loop.create_datagram_endpoint(
        lambda: Echo(args.count, done), local_addr=(args.host, 0))
    port = transport.get_extra_info("sockname")[1]
    with open(args.port_file + ".tmp", "w") as f:
        f.write("%d\n" % port)
    os.rename(args.port_file + ".tmp", args.port_file)
    try:
        await asyncio.wait_for(done, DEADLINE)
    except asyncio.TimeoutError:
        print("server: only %d of %d echoed" % (proto.echoed, args.count), file=sys.stderr)
        return 1
    finally:
        transport.close()
    return 0


async def client(args):
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    transport, proto = await loop.create_datagram_endpoint(
        lambda: Client(args.count, args.window, done), remote_addr=(args.host, args.port))
    try:
        await asyncio.wait_for(done, DEADLINE)
    except asyncio.TimeoutError:
        print("client: %d of %d echoed" % (proto.received, args.count), file=sys.stderr)
        return 1
    finally:
        transport.close()
    return 0 if proto.bad == 0 and proto.received == args.count else 1


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("role", choices=["server", "client"])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file")
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--window", type=int, default=32)
    args = parser.parse_args()
    sys.exit(asyncio.run(serve(args) if args.role == "server" else client(args)))


if __name__ == "__main__":
    main()
