#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# stream_echo.py: asyncio streams echo (start_server; read up to 64 KiB, write, drain), for
# bench/stream.sh. --uvloop runs the same on uvloop. Run with Debian's /usr/bin/python3.
import asyncio
import resource
import sys


async def echo(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    writer.close()


async def main(port):
    server = await asyncio.start_server(echo, "127.0.0.1", port, backlog=4096)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    port = int(sys.argv[sys.argv.index("-p") + 1])
    if "--uvloop" in sys.argv:
        import uvloop
        uvloop.install()
    try:
        asyncio.run(main(port))
    except KeyboardInterrupt:
        pass
