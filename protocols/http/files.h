/* SPDX-License-Identifier: MIT */
/* files.h: static files for the http plugin: safe paths, MIME types, ranges, validators, cache. */
#ifndef WEFT_HTTP_FILES_H
#define WEFT_HTTP_FILES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

/* http_path_normalise() outcomes (negative) besides 0. */
enum {
    HTTP_PATH_BAD = -400,       /* malformed: bad %-escape, not origin-form */
    HTTP_PATH_FORBIDDEN = -403, /* "..", NUL, control bytes, backslash */
};

/**
 * Turn a request target (origin-form "/a%20b?q", or absolute-form
 * "http://h/a") into a clean path in out: query and fragment dropped,
 * %-escapes decoded once, "." and empty segments removed, a trailing slash
 * kept. Any ".." segment, NUL or control byte, or backslash after decoding is
 * HTTP_PATH_FORBIDDEN; a bad escape or a target not starting with '/' is
 * HTTP_PATH_BAD; a result longer than outlen - 1 is HTTP_PATH_BAD too.
 * Returns the length of out (always starts with '/') or a code above.
 */
int http_path_normalise(const char *target, size_t len, char *out, size_t outlen);

/** True if a segment of the normalised path starts with '.' (a dotfile). */
bool http_path_has_dotfile(const char *path);

/**
 * Open relpath (no leading '/', "" for root itself) strictly beneath the
 * directory rootfd: with follow_symlinks false no symlink may be crossed;
 * with it true symlinks may be crossed but must resolve inside root.
 * Uses openat2(RESOLVE_BENEATH) and falls back to a component-wise
 * O_NOFOLLOW walk where openat2 is missing. Returns an fd (O_RDONLY |
 * O_CLOEXEC) or -errno: -ENOENT/-ENOTDIR (404), -ELOOP/-EXDEV/-EACCES (403).
 */
int http_open_beneath(int rootfd, const char *root_real, const char *relpath,
                      bool follow_symlinks);

/**
 * http_open_beneath()'s fallback where openat2 is missing, exposed for tests:
 * one openat(O_NOFOLLOW) per component, or with follow_symlinks an open whose
 * /proc/self/fd path must lie under root_real. Same results.
 */
int http_open_walk(int rootfd, const char *root_real, const char *relpath, bool follow_symlinks);

/* MIME types by extension: a built-in table, then /etc/mime.types under it. */
struct http_mime;

/** Build the table; path NULL or missing means the built-in table only. NULL on ENOMEM. */
struct http_mime *http_mime_new(const char *mime_types_path);

/** Free the table; NULL is a no-op. */
void http_mime_free(struct http_mime *m);

/** The type for path's extension, or "application/octet-stream". Never NULL. */
const char *http_mime_lookup(const struct http_mime *m, const char *path);

/**
 * Parse a Range header against a file of size bytes. Returns 1 and sets
 * *start, *len for one satisfiable byte range; 0 to ignore it and send the
 * whole file (not "bytes=", malformed, several ranges); -1 when unsatisfiable
 * (416).
 */
int http_range_parse(const char *h, uint64_t size, uint64_t *start, uint64_t *len);

/** The strong validator for a file: "\"<mtime hex>-<size hex>\"" (nginx's form). */
void http_etag_format(char *out, size_t outlen, time_t mtime, uint64_t size);

/** True if the If-None-Match list h names etag (weak comparison) or is "*". */
bool http_etag_match(const char *h, const char *etag);

/**
 * True if the entity-tag list h (If-Match, If-None-Match) names etag or is "*": with
 * strong, a weak tag (W/"...") in the list never matches (If-Match, RFC 9110 §13.1.1);
 * else the weak comparison (If-None-Match, §13.1.2). etag is ours, always strong.
 */
bool http_etag_list_match(const char *h, const char *etag, bool strong);

/* The request's validators and range, as http_file_decide() reads them (NULL: absent). */
struct http_preconditions {
    const char *if_match, *if_unmodified_since;     /* 412 when false (RFC 9110 §13.1.1, .4) */
    const char *if_none_match, *if_modified_since;  /* 304 when false (§13.1.2, .3) */
    const char *range, *if_range;                   /* 206 / 416 (§14.2, §13.1.5) */
    bool get;                                       /* a GET (Range applies to GET only) */
};

/* What http_file_decide() decided: the status and the bytes of the body. */
struct http_file_answer {
    int status;                 /* 200, 206, 304, 412 or 416 */
    uint64_t start, len;        /* the body's bytes (200: 0, size; 206: the range) */
};

/**
 * Decide the answer to a GET or HEAD of a file of size bytes, modified at mtime, whose
 * strong validator is etag and whose Last-Modified is lastmod, in RFC 9110 §13.2.2's
 * order: If-Match, else If-Unmodified-Since (412); If-None-Match, else If-Modified-Since
 * (304); then Range, honoured only when If-Range (if any) matches exactly (206, or 416
 * when unsatisfiable). A date that does not parse is ignored. Pure: no I/O, no errors.
 */
struct http_file_answer http_file_decide(const struct http_preconditions *q, const char *etag,
                                         const char *lastmod, time_t mtime, uint64_t size);

/** Format t as an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT"); out holds 30 bytes. */
void http_date_format(time_t t, char out[30]);

/** Parse an HTTP date (IMF-fixdate, RFC 850 or asctime). 0 and *t, or -1. */
int http_date_parse(const char *s, time_t *t);

/*
 * A small file kept in memory, keyed by its normalised path. Entries are
 * revalidated (reopened beneath root and fstat'ed) at most once a second:
 * a changed size, mtime or inode drops them.
 */
struct http_cache;

/* A cached file's whole HTTP/1.1 answer, made by http.c (h1_cached): status line, Date,
 * Server, the entry's headers, the Connection line and the body, in one buffer, so that it
 * leaves with one send from one piece. Made again when the Date second or the variant
 * (HTTP/1.0 or 1.1, keep-alive or close) differs from the last request's. */
struct http_whole {
    char *buf;                  /* malloc'd, the entry frees it; NULL until first made */
    size_t len, cap;            /* len: head and body; the head alone is len - size */
    time_t when;                /* the Date second it was made for */
    unsigned variant;           /* minor * 2 + keep_alive */
};

struct http_cached {
    const char *data;           /* the file's bytes; NULL in a head (http_cache_head) */
    uint64_t size;
    time_t mtime;
    const char *mime;
    char etag[40];
    char last_modified[30];
    /* "Content-Type .. Content-Length .. Last-Modified .. ETag .. Accept-Ranges"
     * lines of a 200 answer, CRLF-terminated, made once when stored */
    const char *headers;
    size_t headers_len;
    struct http_whole *whole;   /* the entry's, writable; NULL in a head */
};

/** A cache of files up to max_file bytes, max_total in all. NULL on ENOMEM. */
struct http_cache *http_cache_new(size_t max_file, size_t max_total);

/** Free the cache; NULL is a no-op. */
void http_cache_free(struct http_cache *c);

/** The entry for path if present and checked within the last second (now_ms); else NULL. */
const struct http_cached *http_cache_get(struct http_cache *c, const char *path, uint64_t now_ms);

/**
 * Store (or refresh) path from the open regular file fd with stat st, if it
 * is small enough; reads the file. Returns the entry, or NULL if it is not
 * cached (too big, read error, ENOMEM). Does not close fd.
 */
const struct http_cached *http_cache_put(struct http_cache *c, const char *path, int fd,
                                         const struct stat *st, const char *mime,
                                         uint64_t now_ms);

/**
 * The head of a 200 for path, a regular file too big to keep whose stat (of the fd about to
 * be sent) is st: its validators and pre-formatted header lines as in http_cache_put()'s
 * entries, with data NULL. Made again only when the size, mtime or mime differ from the
 * last call for path: the head is a function of them, so it is never stale, whatever
 * happens to the file. A table of 64 slots, one per path hash. The entry stays valid until
 * the next call. NULL on ENOMEM or an absurd MIME type (format it the long way).
 */
const struct http_cached *http_cache_head(struct http_cache *c, const char *path,
                                          const struct stat *st, const char *mime);

/** Bytes held and entries, for tests. */
size_t http_cache_bytes(const struct http_cache *c);
size_t http_cache_count(const struct http_cache *c);

#endif
