#!/usr/bin/python3
"""test/bench/peers/py_echo.py — the asyncio echo server, and with --uvloop the
same code on uvloop: a Protocol whose data_received writes the data back,
as asyncio's documentation writes it.

asyncio's transport reads up to 256 KiB per recv and tries the send at once
(buffering only what the socket refuses); uvloop does the same on libuv.

  /usr/bin/python3 py_echo.py --port 0 [--uvloop]   prints "port N", echoes until SIGTERM

uvloop comes from Debian's python3-uvloop, which serves /usr/bin/python3
only. Layer: test (a peer of test/bench/bench_suite.py). Read next: evloop_echo.cpp.
"""
import argparse
import asyncio


class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)


async def serve(port):
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Echo, "127.0.0.1", port, backlog=1024)
    print(f"port {server.sockets[0].getsockname()[1]}", flush=True)
    await server.serve_forever()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True, help="0: any free port")
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop instead of asyncio's own loop")
    args = parser.parse_args()
    if args.uvloop:
        import uvloop

        uvloop.install()
    asyncio.run(serve(args.port))


if __name__ == "__main__":
    main()
