#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# h2_frames.py: hand-made HTTP/2 sequences against weftd's h2c port, for test_http2.sh.
# Frames are built with hyperframe and hpack (python3-h2's dependencies), never by hand:
#   h2_frames.py PORT CASE [ARG]   prints one result line, exits 0 if the server behaved.
# Cases:
#   drain PATH SIZE  GET PATH with no WINDOW_UPDATE; print "started" once data flows,
#                    then wait for a GOAWAY(NO_ERROR) naming stream 1 (the test sends
#                    SIGTERM to weftd meanwhile), then take the rest: SIZE bytes in all.
#   big-headers      a 48 KiB header list (HEADERS + CONTINUATIONs): 431, connection kept.
#   rapid-reset      2000 HEADERS each cancelled at once by RST_STREAM: a GOAWAY with an
#                    error code, or a close (nghttp2's reset rate limit).
#   continuation     one HEADERS and 200 empty CONTINUATIONs: GOAWAY or close (the
#                    CONTINUATION flood limit).
#   ping-flood       20000 PINGs, nothing read meanwhile: GOAWAY or close (outbound ACKs).
#   settings-flood   20000 SETTINGS, the same.
#   endless-body     a POST whose body never ends: 405 at the headers, then RST_STREAM(NO_ERROR)
#                    once the body passes max_body_size (1m), before 2 MiB (the server's windows
#                    respected).
#   trickle          HEADERS, then a CONTINUATION every 0.2 s (slowloris): closed after the
#                    service's header_timeout (the test's [slow] service: 1 s).
#   garbage          the preface, then DATA on stream 0: GOAWAY(PROTOCOL_ERROR) or close.
# Control frame floods, each read as it comes (so nghttp2's outbound ACK limit is not what
# stops them): 20000 frames that ask for nothing must bring GOAWAY(ENHANCE_YOUR_CALM) (11),
# or a close (the GOAWAY lost to the RST of a close with our frames unread), after about
# http2_max_control_frames (1000); test_http2.sh checks the log line of each:
#   window-flood     WINDOW_UPDATEs of 1 byte, on the connection and on stream 1 (answered);
#   priority-flood   PRIORITY frames on ever new idle streams;
#   empty-data       empty DATA frames on an open POST (CVE-2019-9518);
#   rst-closed       RST_STREAMs on stream 1, closed once answered;
#   bad-headers      HEADERS with no :path (malformed, each reset by nghttp2: no request);
#   unknown-flood    frames of an unknown type (0x20), which nghttp2 skips unseen;
#   closed-data      empty DATA frames on stream 1, closed once answered (skipped too);
#   ping-read        PINGs whose ACKs are read.
#   zero-window      SETTINGS_INITIAL_WINDOW_SIZE 0, GET /big.bin, then a PING every 0.2 s:
#                    RST_STREAM for stream 1 after the [slow] service's http2_send_timeout
#                    (1 s), then GOAWAY and close after its keepalive_timeout (2 s).
#   slow-reader PATH PID  windows of 2 GiB, GET PATH, then 2 s of PINGs and no reading:
#                    the RSS of PID (the worker) must grow by less than 32 MiB (ASan's
#                    quarantine adds some; the file is 256 MiB).
#   slow-close PATH SIZE  the same for 3 s on the [slow] service, then read: the server
#                    gave up (http2_send_timeout 1 s), the connection ends before SIZE bytes.
import socket
import sys
import time

import hpack
from hyperframe.frame import (ContinuationFrame, DataFrame, Frame, GoAwayFrame, HeadersFrame,
                              PingFrame, PriorityFrame, RstStreamFrame, SettingsFrame,
                              WindowUpdateFrame)

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
port, case = int(sys.argv[1]), sys.argv[2]
enc = hpack.Encoder()
dec = hpack.Decoder()
dec.max_allowed_table_size = 65536


def connect():
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.sendall(PREFACE + SettingsFrame(0).serialize())
    return s


def req(path, extra=()):
    return enc.encode([(":method", "GET"), (":scheme", "http"), (":path", path),
                       (":authority", "x")] + list(extra))


class Reader:
    def __init__(self, s, raise_timeout=True):
        self.s, self.buf, self.raise_timeout = s, b"", raise_timeout

    def frame(self):
        """The next frame, or None at EOF (or a reset)."""
        while True:
            if len(self.buf) >= 9:
                f, length = Frame.parse_frame_header(memoryview(self.buf[:9]))
                if len(self.buf) >= 9 + length:
                    f.parse_body(memoryview(self.buf[9:9 + length]))
                    self.buf = self.buf[9 + length:]
                    return f
            try:
                b = self.s.recv(65536)
            except (ConnectionResetError, BrokenPipeError):
                return None
            except socket.timeout:
                if self.raise_timeout:
                    raise
                return None
            if not b:
                return None
            self.buf += b


def done(ok, what):
    print(("ok " if ok else "BAD ") + what, flush=True)
    sys.exit(0 if ok else 1)


def until_goaway_or_close(s, limit=60):
    """Read to the end: the GOAWAY's error code, 'close' without one."""
    r, end = Reader(s), time.monotonic() + limit
    code = "close"
    s.settimeout(limit)
    while time.monotonic() < end:
        try:
            f = r.frame()
        except socket.timeout:
            return "timeout"
        if f is None:
            return code
        if isinstance(f, GoAwayFrame):
            code = f.error_code
    return "timeout"


def send_all(s, data):
    try:
        s.sendall(data)
    except (ConnectionResetError, BrokenPipeError):
        pass


if case == "drain":
    path, size = sys.argv[3], int(sys.argv[4])
    s = connect()
    s.sendall(HeadersFrame(1, req(path), flags=["END_HEADERS", "END_STREAM"]).serialize())
    r, got, goaway, started, ended = Reader(s), 0, None, False, False
    while True:
        f = r.frame()
        if f is None:
            break
        if isinstance(f, DataFrame) and f.stream_id == 1:
            got += len(f.data)
            if not started:
                print("started", flush=True)
                started = True
            if "END_STREAM" in f.flags:
                ended = True
        elif isinstance(f, GoAwayFrame):
            goaway = (f.last_stream_id, f.error_code)
            # the window is used up: open it now (1 GiB: more than the file), the rest must come
            s.sendall(WindowUpdateFrame(0, 1 << 30).serialize() +
                      WindowUpdateFrame(1, 1 << 30).serialize())
        elif isinstance(f, PingFrame) and "ACK" not in f.flags:
            s.sendall(PingFrame(0, f.opaque_data, flags=["ACK"]).serialize())
        elif isinstance(f, SettingsFrame) and "ACK" not in f.flags:
            s.sendall(SettingsFrame(0, flags=["ACK"]).serialize())
    done(goaway == (1, 0) and got == size and ended,
         f"drain: goaway {goaway}, {got} of {size} bytes, ended {ended}")

if case == "big-headers":
    s = connect()
    block = req("/hello.txt", [("x-big%d" % i, "v" * 4000) for i in range(12)])
    chunks = [block[i:i + 16000] for i in range(0, len(block), 16000)]
    frames = [HeadersFrame(1, chunks[0], flags=["END_STREAM"] + (["END_HEADERS"] if len(chunks) == 1 else []))]
    for i, ch in enumerate(chunks[1:]):
        frames.append(ContinuationFrame(1, ch, flags=["END_HEADERS"] if i == len(chunks) - 2 else []))
    s.sendall(b"".join(f.serialize() for f in frames))
    # then a normal request on the same connection
    s.sendall(HeadersFrame(3, req("/hello.txt"), flags=["END_HEADERS", "END_STREAM"]).serialize())
    r, status = Reader(s), {}
    while len(status) < 2:
        f = r.frame()
        if f is None:
            break
        if isinstance(f, HeadersFrame):
            status[f.stream_id] = dict(dec.decode(f.data)).get(":status")
        elif isinstance(f, SettingsFrame) and "ACK" not in f.flags:
            s.sendall(SettingsFrame(0, flags=["ACK"]).serialize())
    done(status == {1: "431", 3: "200"}, f"big-headers: {status}")

if case == "rapid-reset":
    s = connect()
    out = b""
    for i in range(2000):
        sid = 1 + 2 * i
        out += HeadersFrame(sid, req("/hello.txt"), flags=["END_HEADERS", "END_STREAM"]).serialize()
        out += RstStreamFrame(sid, 8).serialize()       # CANCEL
    send_all(s, out)
    code = until_goaway_or_close(s)
    done(code != "timeout" and code != 0, f"rapid-reset: {code}")

if case == "continuation":
    s = connect()
    out = HeadersFrame(1, req("/hello.txt"), flags=["END_STREAM"]).serialize()
    out += b"".join(ContinuationFrame(1, enc.encode([("x-c", "1")])).serialize() for _ in range(200))
    send_all(s, out)
    code = until_goaway_or_close(s)
    done(code != "timeout" and code != 0, f"continuation: {code}")

if case in ("ping-flood", "settings-flood"):
    s = connect()
    one = (PingFrame(0, b"12345678") if case == "ping-flood" else SettingsFrame(0)).serialize()
    s.settimeout(5)
    sent = 0
    try:
        for _ in range(20):
            s.sendall(one * 1000)
            sent += 1000
    except (socket.timeout, ConnectionResetError, BrokenPipeError):
        pass            # the server stopped reading us: what we wanted
    s.settimeout(30)
    code = until_goaway_or_close(s)
    done(code != "timeout" and code != 0, f"{case}: {code} after {sent} frames")

if case == "endless-body":
    s = connect()
    blk = enc.encode([(":method", "POST"), (":scheme", "http"), (":path", "/hello.txt"),
                      (":authority", "x")])
    s.sendall(HeadersFrame(1, blk, flags=["END_HEADERS"]).serialize())
    r, status, rst, sent = Reader(s), None, None, 0
    win = {0: 65535, 1: 65535}          # the server's windows, as RFC 9113 §6.9 counts them
    chunk = DataFrame(1, b"x" * 16384).serialize()
    while rst is None and sent < (3 << 20):
        if min(win.values()) >= 16384:
            send_all(s, chunk)
            sent += 16384
            win[0] -= 16384
            win[1] -= 16384
            continue
        f = r.frame()                   # wait for a WINDOW_UPDATE (or the reset)
        if f is None:
            break
        if isinstance(f, HeadersFrame):
            status = dict(dec.decode(f.data)).get(":status")
        elif isinstance(f, RstStreamFrame):
            rst = f.error_code
        elif isinstance(f, WindowUpdateFrame) and f.stream_id in win:
            win[f.stream_id] += f.window_increment
        elif isinstance(f, SettingsFrame) and "ACK" not in f.flags:
            s.sendall(SettingsFrame(0, flags=["ACK"]).serialize())
    done(status == "405" and rst == 0 and sent <= (2 << 20),
         f"endless-body: status {status}, reset {rst} after {sent} bytes")

if case == "trickle":
    # HEADERS without END_HEADERS, then a CONTINUATION every 0.2 s: the server (whose
    # header_timeout the test sets to 1 s) must close well before 20 s
    s = connect()
    t0 = time.monotonic()
    s.sendall(HeadersFrame(1, req("/hello.txt"), flags=["END_STREAM"]).serialize())
    s.settimeout(0.2)
    closed = False
    while not closed and time.monotonic() - t0 < 20:
        try:
            b = s.recv(65536)
            closed = not b
        except socket.timeout:
            pass
        except ConnectionResetError:
            closed = True
        if not closed:
            try:
                s.sendall(ContinuationFrame(1, enc.encode([("x-t", "1")])).serialize())
            except (BrokenPipeError, ConnectionResetError):
                closed = True
    took = time.monotonic() - t0
    done(closed and 0.9 < took < 10, f"trickle: closed {closed} after {took:.1f} s")

def flood(s, frames, limit=20000):
    """Send frames (a function of i) one batch at a time while reading what comes back:
    (the GOAWAY's error code or 'close', how many were sent)."""
    r, sent, code = Reader(s), 0, None
    s.setblocking(False)
    while sent < limit and code is None:
        batch = b"".join(frames(sent + i) for i in range(100))
        try:
            s.sendall(batch)
            sent += 100
        except BlockingIOError:
            pass
        except (ConnectionResetError, BrokenPipeError):
            code = "close"
            break
        while True:
            try:
                b = s.recv(65536)
            except BlockingIOError:
                break
            except ConnectionResetError:
                b = b""
            if not b:
                code = code or "close"
                break
            r.buf += b
        while code is None and len(r.buf) >= 9:
            f, length = Frame.parse_frame_header(memoryview(r.buf[:9]))
            if len(r.buf) < 9 + length:
                break
            f.parse_body(memoryview(r.buf[9:9 + length]))
            r.buf = r.buf[9 + length:]
            if isinstance(f, GoAwayFrame):
                code = f.error_code
    s.setblocking(True)
    if code is None:
        code = until_goaway_or_close(s, 10)
    return code, sent


def answered(s, sid, path="/hello.txt"):
    """GET path on stream sid, read to its END_STREAM."""
    s.sendall(HeadersFrame(sid, req(path), flags=["END_HEADERS", "END_STREAM"]).serialize())
    r = Reader(s)
    while True:
        f = r.frame()
        if f is None:
            done(False, "closed before stream %d was answered" % sid)
        if isinstance(f, SettingsFrame) and "ACK" not in f.flags:
            s.sendall(SettingsFrame(0, flags=["ACK"]).serialize())
        if f.stream_id == sid and "END_STREAM" in getattr(f, "flags", ()):
            return


if case in ("window-flood", "priority-flood", "empty-data", "rst-closed", "bad-headers",
            "unknown-flood", "closed-data", "ping-read"):
    s = connect()
    if case == "window-flood":
        answered(s, 1)
        one = lambda i: WindowUpdateFrame(i % 2, 1).serialize()
    elif case == "priority-flood":
        one = lambda i: PriorityFrame(1 + 2 * i, depends_on=0, stream_weight=16).serialize()
    elif case == "empty-data":
        s.sendall(HeadersFrame(1, enc.encode([(":method", "POST"), (":scheme", "http"),
                                              (":path", "/hello.txt"), (":authority", "x")]),
                               flags=["END_HEADERS"]).serialize())
        one = lambda i: DataFrame(1, b"").serialize()
    elif case == "rst-closed":
        answered(s, 1)
        one = lambda i: RstStreamFrame(1, 8).serialize()
    elif case == "unknown-flood":
        one = lambda i: b"\x00\x00\x01\x20\x00\x00\x00\x00\x00x"
    elif case == "closed-data":
        answered(s, 1)
        one = lambda i: DataFrame(1, b"").serialize()
    elif case == "bad-headers":
        bad = enc.encode([(":method", "GET"), (":scheme", "http"), (":authority", "x")])
        one = lambda i: HeadersFrame(1 + 2 * i, bad, flags=["END_HEADERS", "END_STREAM"]).serialize()
    else:
        one = lambda i: PingFrame(0, b"%08d" % (i % 10 ** 8)).serialize()
    code, sent = flood(s, one)
    # a close without the GOAWAY read: the server closed with our frames unread, and the
    # kernel's RST overtook it (test_http2.sh counts the log's lines instead)
    done(code in (11, "close"), f"{case}: {code} after {sent} frames")

if case == "zero-window":
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.sendall(PREFACE + SettingsFrame(0, settings={SettingsFrame.INITIAL_WINDOW_SIZE: 0}).serialize())
    t0 = time.monotonic()
    s.sendall(HeadersFrame(1, req("/big.bin"), flags=["END_HEADERS", "END_STREAM"]).serialize())
    r, rst, goaway, closed, data = Reader(s), None, None, None, 0
    s.settimeout(0.2)
    while closed is None and time.monotonic() - t0 < 20:
        try:
            f = r.frame()
        except socket.timeout:
            send_all(s, PingFrame(0, b"stallstl").serialize())     # every 0.2 s
            continue
        if f is None:
            closed = time.monotonic() - t0
        elif isinstance(f, RstStreamFrame) and f.stream_id == 1:
            rst = time.monotonic() - t0
        elif isinstance(f, GoAwayFrame):
            goaway = f.error_code
        elif isinstance(f, DataFrame):
            data += len(f.data)
        elif isinstance(f, SettingsFrame) and "ACK" not in f.flags:
            send_all(s, SettingsFrame(0, flags=["ACK"]).serialize())
    done(rst is not None and 0.9 < rst < 8 and data == 0 and goaway == 0 and
         closed is not None and closed - rst < 10,
         f"zero-window: {data} bytes, reset after {rst} s, GOAWAY {goaway}, closed after {closed} s")

def slow_connect():
    """A client with windows of 2 GiB that reads nothing, its receive buffer small."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(30)
    s.connect(("127.0.0.1", port))
    s.sendall(PREFACE + SettingsFrame(0, settings={SettingsFrame.INITIAL_WINDOW_SIZE: (1 << 31) - 1}).serialize() +
              WindowUpdateFrame(0, (1 << 31) - 1 - 65535).serialize())
    return s


def ping_for(s, secs):
    """Send a PING every 0.2 s for secs, reading nothing (what a stall looks like)."""
    end = time.monotonic() + secs
    while time.monotonic() < end:
        send_all(s, PingFrame(0, b"slowread").serialize())
        time.sleep(0.2)


if case == "slow-reader":
    path, wpid = sys.argv[3], int(sys.argv[4])

    def rss():
        with open(f"/proc/{wpid}/status") as f:
            return next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
    s = slow_connect()
    before = rss()
    s.sendall(HeadersFrame(1, req(path), flags=["END_HEADERS", "END_STREAM"]).serialize())
    # what the server cannot send must wait in the file, not in its memory
    ping_for(s, 2)
    after = rss()
    done(after - before < 32768, f"slow-reader: the worker's RSS {before} -> {after} KiB")

if case == "slow-close":
    # the same on the [slow] service (http2_send_timeout 1 s): after 3 s of reading nothing,
    # the server has given up: reading now brings the end, well before all SIZE bytes
    path, size = sys.argv[3], int(sys.argv[4])
    s = slow_connect()
    s.sendall(HeadersFrame(1, req(path), flags=["END_HEADERS", "END_STREAM"]).serialize())
    ping_for(s, 3)
    r, got, end = Reader(s), 0, time.monotonic() + 20
    while time.monotonic() < end:
        f = r.frame()
        if f is None:
            break
        if isinstance(f, DataFrame):
            got += len(f.data)
    done(time.monotonic() < end and got < size, f"slow-close: ended after {got} of {size} bytes")

if case == "garbage":
    s = connect()
    # DATA on stream 0: a connection error (RFC 9113 §6.1)
    send_all(s, b"\x00\x00\x05\x00\x00\x00\x00\x00\x00hello")
    code = until_goaway_or_close(s)
    done(code != "timeout" and code != 0, f"garbage: {code}")

done(False, f"unknown case {case}")
