/* SPDX-License-Identifier: MIT */
/* response.c: status lines, common headers, the cached Date header, small error pages. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>

#include "files.h"
#include "response.h"

const char *
http_status_text(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default:  return "Unknown";
    }
}

const char *
http_date_now(void)
{
    /* One loop per thread, so a thread-local cache is a per-loop cache. */
    static __thread time_t when = -1;
    static __thread char buf[30];
    time_t now = time(NULL);
    if (now != when) {
        http_date_format(now, buf);
        when = now;
    }
    return buf;
}

int
http_head_write(struct evbuffer *out, const struct http_head *h)
{
    char line[512];
    int n = snprintf(line, sizeof(line), "HTTP/1.%u %d %s\r\nDate: %s\r\n",
                     h->minor ? 1u : 0u, h->status, http_status_text(h->status),
                     http_date_now());
    if (h->server && n < (int)sizeof(line))
        n += snprintf(line + n, sizeof(line) - (size_t)n, "Server: %s\r\n", h->server);
    if (h->content_type && n < (int)sizeof(line))
        n += snprintf(line + n, sizeof(line) - (size_t)n, "Content-Type: %s\r\n",
                      h->content_type);
    if (!h->no_length && n < (int)sizeof(line))
        n += snprintf(line + n, sizeof(line) - (size_t)n, "Content-Length: %" PRIu64 "\r\n",
                      h->content_length);
    /* 1.1 keeps alive unless told; 1.0 closes unless told. Say it either way. */
    if (n < (int)sizeof(line))
        n += snprintf(line + n, sizeof(line) - (size_t)n, "Connection: %s\r\n",
                      h->keep_alive ? "keep-alive" : "close");
    if (n >= (int)sizeof(line))
        return -ENOMEM;
    if (evbuffer_add(out, line, (size_t)n) < 0)
        return -ENOMEM;
    if (h->extra && evbuffer_add(out, h->extra, strlen(h->extra)) < 0)
        return -ENOMEM;
    return evbuffer_add(out, "\r\n", 2) < 0 ? -ENOMEM : 0;
}

int
http_html_escape(struct evbuffer *out, const char *s)
{
    const char *run = s;
    for (; *s; s++) {
        const char *rep;
        switch (*s) {
        case '&': rep = "&amp;"; break;
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '"': rep = "&quot;"; break;
        case '\'': rep = "&#39;"; break;
        default: continue;
        }
        if (evbuffer_add(out, run, (size_t)(s - run)) < 0 ||
            evbuffer_add(out, rep, strlen(rep)) < 0)
            return -ENOMEM;
        run = s + 1;
    }
    return evbuffer_add(out, run, (size_t)(s - run)) < 0 ? -ENOMEM : 0;
}

int
http_error_body(struct evbuffer *body, int status, const char *hint)
{
    const char *text = http_status_text(status);
    if (evbuffer_add_printf(body, "<!DOCTYPE html>\n<html><head><title>%d %s</title></head>\n"
                            "<body><h1>%d %s</h1>\n", status, text, status, text) < 0)
        return -ENOMEM;
    if (hint && (evbuffer_add_printf(body, "<p>") < 0 || http_html_escape(body, hint) < 0 ||
                 evbuffer_add_printf(body, "</p>\n") < 0))
        return -ENOMEM;
    return evbuffer_add_printf(body, "</body></html>\n") < 0 ? -ENOMEM : 0;
}

int
http_error_write(struct evbuffer *out, int status, unsigned minor, const char *server,
                 bool keep_alive, bool head_only, const char *extra, const char *hint)
{
    struct evbuffer *body = evbuffer_new();
    int rc = -ENOMEM;
    if (body == NULL)
        return -ENOMEM;
    if (http_error_body(body, status, hint) < 0)
        goto out;
    struct http_head h = {
        .status = status, .minor = minor, .server = server,
        .content_type = "text/html; charset=utf-8",
        .content_length = evbuffer_get_length(body),
        .keep_alive = keep_alive, .extra = extra,
    };
    if ((rc = http_head_write(out, &h)) < 0)
        goto out;
    rc = head_only ? 0 : (int)h.content_length;
    if (!head_only && evbuffer_add_buffer(out, body) < 0)
        rc = -ENOMEM;
out:
    evbuffer_free(body);
    return rc;
}
