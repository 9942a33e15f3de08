#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# netlog.py FILE ORIGIN: what Chromium's net-log (chromium --log-net-log=FILE) says of its
# requests to ORIGIN (e.g. https://127.0.0.1:8443), for sh_test_http2_browser. Prints, one
# a line:
#   request PATH PROTO STATUS BYTES   each request to ORIGIN: PROTO h2 (its headers went in
#                                     an HTTP/2 HEADERS frame), http/1.1, or none (it never
#                                     reached the network); STATUS the response's (or -);
#                                     BYTES the body bytes read
#   tls NEXT_PROTO                    each TLS handshake that finished: the protocol ALPN
#                                     chose (h2, http/1.1, or "-" for none)
#   h2-session HOST:PORT              each HTTP/2 session opened to ORIGIN's host and port
# Requests elsewhere (Chromium's own, refused on a closed network) are left out. Exit 0;
# 2 if FILE cannot be read as a net-log. A log cut short (Chromium killed before it closed
# it) is read as far as it goes.
import json
import sys


def load(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    try:
        return json.loads(text)
    except ValueError:
        # Chromium writes an event a line as it goes and closes the list at exit: end the
        # list after the last whole event (or drop what came after the list).
        polled = text.find('"polledData"')
        if polled > 0:
            return json.loads(text[:polled].rstrip().rstrip(",") + "}")
        cut = len(text)
        for _ in range(3):
            cut = text.rfind("},", 0, cut)
            if cut < 0:
                break
            try:
                return json.loads(text[:cut + 1] + "]}")
            except ValueError:
                continue
        raise


def main(argv):
    if len(argv) != 3:
        print("usage: netlog.py FILE ORIGIN", file=sys.stderr)
        return 2
    origin = argv[2].rstrip("/")
    hostport = origin.split("://", 1)[-1]
    try:
        log = load(argv[1])
        consts = log["constants"]
        names = {v: k for k, v in consts["logEventTypes"].items()}
        sources = {v: k for k, v in consts["logSourceType"].items()}
        begin = consts["logEventPhase"]["PHASE_BEGIN"]
        end = consts["logEventPhase"]["PHASE_END"]
        events = log["events"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        print("netlog.py: %s: not a net-log: %s" % (argv[1], e), file=sys.stderr)
        return 2

    reqs = {}       # URL_REQUEST source id -> [path, proto, status, bytes]
    order = []
    for e in events:
        name = names.get(e.get("type"), "?")
        src = e.get("source", {})
        params = e.get("params") or {}
        kind = sources.get(src.get("type"), "?")
        sid = src.get("id")
        if kind == "URL_REQUEST":
            if name == "URL_REQUEST_START_JOB" and e.get("phase") == begin:
                url = params.get("url", "")
                if sid not in reqs and (url == origin or url.startswith(origin + "/")):
                    reqs[sid] = [url[len(origin):] or "/", "none", "-", 0]
                    order.append(sid)
            r = reqs.get(sid)
            if r is None:
                continue
            if name == "HTTP_TRANSACTION_HTTP2_SEND_REQUEST_HEADERS":
                r[1] = "h2"
            elif name == "HTTP_TRANSACTION_SEND_REQUEST_HEADERS":
                r[1] = "http/1.1"
            elif name == "HTTP_TRANSACTION_READ_RESPONSE_HEADERS":
                head = (params.get("headers") or ["-"])[0].split()
                r[2] = head[1] if len(head) > 1 else "-"
            elif name == "URL_REQUEST_JOB_FILTERED_BYTES_READ":
                r[3] += int(params.get("byte_count", 0))
        elif name == "SSL_CONNECT" and e.get("phase") == end and "version" in params:
            print("tls %s" % (params.get("next_proto") or "-"))
        elif (name == "HTTP2_SESSION" and e.get("phase") == begin and
              params.get("host") == hostport):
            print("h2-session %s" % hostport)
    for sid in order:
        print("request %s %s %s %d" % tuple(reqs[sid]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
