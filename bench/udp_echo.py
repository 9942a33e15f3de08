# SPDX-License-Identifier: MIT
# udp_echo.py: asyncio DatagramProtocol echo server (uvloop's loop with --uvloop), for bench/udp.sh.
#
# Run with Debian's /usr/bin/python3, which has python3-uvloop:
#     /usr/bin/python3 bench/udp_echo.py [--uvloop] HOST PORT
import argparse
import asyncio
import sys


class Echo(asyncio.DatagramProtocol):
    """Sends each datagram back to its sender (RFC 862)."""

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        self.transport.sendto(data, addr)


async def serve(host, port):
    loop = asyncio.get_running_loop()
    await loop.create_datagram_endpoint(Echo, local_addr=(host, port))
    await asyncio.Event().wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--uvloop", action="store_true", help="run on uvloop's event loop")
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    args = ap.parse_args()
    if args.uvloop:
        try:
            import uvloop
        except ImportError:
            sys.exit("udp_echo: uvloop missing: install python3-uvloop, run /usr/bin/python3")
        uvloop.install()
    try:
        asyncio.run(serve(args.host, args.port))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
