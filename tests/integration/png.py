#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# png.py: the PNG files sh_test_http2_browser serves and the screenshot it checks, with the
# standard library only (zlib, struct).
#   png.py make FILE W H R,G,B [LEVEL]       a W x H image of one colour (8-bit RGB), its
#                                            data compressed at zlib LEVEL (default 6; 0:
#                                            stored, 3 bytes a pixel)
#   png.py check FILE X,Y=R,G,B[~TOL]...     each pixel has that colour, each channel within
#                                            TOL (default 8): exit 0; else print the pixels
#                                            that differ (and the image size) and exit 1
# Reads 8-bit greyscale, RGB, RGBA and grey+alpha images, not interlaced (what Chromium
# writes); anything else is an error, said, exit 2.
import struct
import sys
import zlib

SIG = b"\x89PNG\r\n\x1a\n"


def chunk(kind, data):
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))


def make(path, w, h, rgb, level=6):
    row = b"\x00" + bytes(rgb) * w          # filter type 0 (none) on each row
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    with open(path, "wb") as f:
        f.write(SIG + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(row * h, level))
                + chunk(b"IEND", b""))


def paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def read(path):
    """(width, height, channels, rows): rows a list of bytearrays, unfiltered."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != SIG:
        raise ValueError("not a PNG file")
    pos, ihdr, idat = 8, None, bytearray()
    while pos + 8 <= len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if len(body) != n:
            raise ValueError("truncated %s chunk" % kind.decode("latin-1"))
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
        pos += 12 + n
    if ihdr is None:
        raise ValueError("no IHDR chunk")
    w, h, depth, ctype, _, _, interlace = ihdr
    chans = {0: 1, 2: 3, 4: 2, 6: 4}.get(ctype)
    if depth != 8 or chans is None or interlace:
        raise ValueError("unsupported PNG: depth %d, colour type %d, interlace %d"
                         % (depth, ctype, interlace))
    raw = zlib.decompress(bytes(idat))
    stride = w * chans
    if len(raw) != h * (stride + 1):
        raise ValueError("image data is %d bytes, not %d" % (len(raw), h * (stride + 1)))
    rows, prev = [], bytearray(stride)
    for y in range(h):
        ftype = raw[y * (stride + 1)]
        cur = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = cur[i - chans] if i >= chans else 0
            b = prev[i]
            c = prev[i - chans] if i >= chans else 0
            if ftype == 1:
                cur[i] = (cur[i] + a) & 255
            elif ftype == 2:
                cur[i] = (cur[i] + b) & 255
            elif ftype == 3:
                cur[i] = (cur[i] + ((a + b) >> 1)) & 255
            elif ftype == 4:
                cur[i] = (cur[i] + paeth(a, b, c)) & 255
            elif ftype != 0:
                raise ValueError("row %d: filter type %d" % (y, ftype))
        rows.append(cur)
        prev = cur
    return w, h, chans, rows


def check(path, specs):
    w, h, chans, rows = read(path)
    bad = []
    for spec in specs:
        where, _, want = spec.partition("=")
        want, _, tol = want.partition("~")
        x, y = (int(v) for v in where.split(","))
        want = [int(v) for v in want.split(",")]
        tol = int(tol or 8)
        if not (0 <= x < w and 0 <= y < h):
            bad.append("%d,%d: outside the %dx%d image" % (x, y, w, h))
            continue
        px = rows[y][x * chans:(x + 1) * chans]
        rgb = list(px[:3]) if chans >= 3 else [px[0]] * 3
        if any(abs(g - e) > tol for g, e in zip(rgb, want)):
            bad.append("%d,%d: %s, not %s" % (x, y, ",".join(map(str, rgb)),
                                             ",".join(map(str, want))))
    if bad:
        print("%s (%dx%d): %s" % (path, w, h, "; ".join(bad)))
        return 1
    return 0


def main(argv):
    try:
        if len(argv) in (6, 7) and argv[1] == "make":
            make(argv[2], int(argv[3]), int(argv[4]), [int(v) for v in argv[5].split(",")],
                 int(argv[6]) if len(argv) == 7 else 6)
            return 0
        if len(argv) >= 4 and argv[1] == "check":
            return check(argv[2], argv[3:])
    except (OSError, ValueError, zlib.error) as e:
        print("png.py: %s: %s" % (argv[2], e))
        return 2
    print("usage: png.py make FILE W H R,G,B [LEVEL] | check FILE X,Y=R,G,B[~TOL]...",
          file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
