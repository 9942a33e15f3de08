# SPDX-License-Identifier: MIT
# echo_asyncio.py: asyncio Protocol echo server (uvloop's loop with --uvloop), the Python peers.
#
# Run with Debian's /usr/bin/python3, which has python3-uvloop:
#     /usr/bin/python3 bench/echo_asyncio.py [--uvloop] HOST PORT
import argparse
import asyncio
import resource
import sys


class Echo(asyncio.Protocol):
    """Writes back whatever arrives; asyncio sets TCP_NODELAY on its TCP transports."""

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)

    def eof_received(self):
        return False            # close once the client has finished sending


async def serve(host, port):
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Echo, host, port, backlog=4096, reuse_address=True)
    async with server:
        await server.serve_forever()


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--uvloop", action="store_true", help="run on uvloop's event loop")
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    args = ap.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if args.uvloop:
        try:
            import uvloop
        except ImportError:
            sys.exit("echo_asyncio: uvloop missing: install python3-uvloop, run /usr/bin/python3")
        uvloop.install()
    try:
        asyncio.run(serve(args.host, args.port))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
