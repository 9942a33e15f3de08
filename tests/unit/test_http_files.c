/* SPDX-License-Identifier: MIT */
/* test_http_files.c: the http plugin's paths, open-beneath-root, MIME, ranges, validators, cache. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "files.h"

static int
norm(const char *target, char *out)
{
    return http_path_normalise(target, strlen(target), out, PATH_MAX);
}

static void
test_normalise_clean_paths(void **state)
{
    char out[PATH_MAX];
    assert_int_equal(norm("/", out), 1);
    assert_string_equal(out, "/");
    assert_true(norm("/a%20b/c.txt?x=/../../etc#f", out) > 0);
    assert_string_equal(out, "/a b/c.txt");
    assert_true(norm("//a///b/./c/", out) > 0);
    assert_string_equal(out, "/a/b/c/");
    assert_true(norm("/a/.", out) > 0);
    assert_string_equal(out, "/a/");
    assert_true(norm("http://example.com/x/y", out) > 0);
    assert_string_equal(out, "/x/y");
    assert_true(norm("/%252e%252e/x", out) > 0);      /* decoded once: a literal name */
    assert_string_equal(out, "/%2e%2e/x");
    assert_true(norm("/%C3%A9t%C3%A9", out) > 0);
    assert_string_equal(out, "/\xc3\xa9t\xc3\xa9");
}

static void
test_normalise_removes_dot_segments(void **state)
{
    /* RFC 3986 §5.2.4, never above the root */
    char out[PATH_MAX];
    static const char *const cases[][2] = {
        { "/a/../b", "/b" }, { "/a/b/../../c", "/c" }, { "/a/b/..", "/a/" },
        { "/a/%2e%2e/b", "/b" }, { "/a/./../b/.", "/b/" }, { "/a//../b", "/b" },
        { "/a/b/../c/../d?x=/../..", "/a/d" }, { "/a/..", "/" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (norm(cases[i][0], out) < 0 || strcmp(out, cases[i][1]) != 0)
            fail_msg("%s gave '%s', not '%s'", cases[i][0], out, cases[i][1]);
    }
}

static void
test_normalise_refuses_traversal_in_every_encoding(void **state)
{
    char out[PATH_MAX];
    const char *forbidden[] = {
        "/..", "/../etc/passwd", "/a/../../etc/passwd", "/%2e%2e/etc/passwd",
        "/%2E%2E/etc/passwd", "/.%2e/etc/passwd", "/%2e./etc/passwd", "/a/%2e%2e/..",
        "/..%2fetc%2fpasswd", "/%2f..%2f", "/..\\etc", "/%5c..%5cetc", "/a%00.html",
        "/a\x01", "/%0d%0aX: y", "/%7f",
    };
    for (size_t i = 0; i < sizeof(forbidden) / sizeof(forbidden[0]); i++) {
        int rc = norm(forbidden[i], out);
        if (rc != HTTP_PATH_FORBIDDEN)
            fail_msg("%s gave %d", forbidden[i], rc);
    }
    const char *bad[] = { "", "a/b", "/%", "/%2", "/%zz", "*", "http://x" "y:1?z" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]) - 1; i++) {
        int rc = norm(bad[i], out);
        if (rc != HTTP_PATH_BAD)
            fail_msg("'%s' gave %d", bad[i], rc);
    }
    char tiny[4];
    assert_int_equal(http_path_normalise("/abcdef", 7, tiny, sizeof(tiny)), HTTP_PATH_BAD);
}

static void
test_dotfiles_are_detected(void **state)
{
    assert_true(http_path_has_dotfile("/.git/config"));
    assert_true(http_path_has_dotfile("/a/.env"));
    assert_false(http_path_has_dotfile("/a/b.c/d"));
    assert_false(http_path_has_dotfile("/"));
}

static void
test_mime_table(void **state)
{
    struct http_mime *m = http_mime_new("/etc/mime.types");
    assert_non_null(m);
    assert_string_equal(http_mime_lookup(m, "/x/index.html"), "text/html; charset=utf-8");
    assert_string_equal(http_mime_lookup(m, "/A.PNG"), "image/png");
    assert_string_equal(http_mime_lookup(m, "/noext"), "application/octet-stream");
    assert_string_equal(http_mime_lookup(m, "/dir.d/noext"), "application/octet-stream");
    assert_string_equal(http_mime_lookup(m, "/x.css"), "text/css; charset=utf-8");
    http_mime_free(m);
    m = http_mime_new("/nonexistent/mime.types");
    assert_non_null(m);
    assert_string_equal(http_mime_lookup(m, "/a.json"), "application/json");
    http_mime_free(m);
}

static void
test_ranges(void **state)
{
    uint64_t s, l;
    assert_int_equal(http_range_parse("bytes=0-9", 100, &s, &l), 1);
    assert_int_equal(s, 0);
    assert_int_equal(l, 10);
    assert_int_equal(http_range_parse("bytes=90-", 100, &s, &l), 1);
    assert_int_equal(s, 90);
    assert_int_equal(l, 10);
    assert_int_equal(http_range_parse("bytes=-5", 100, &s, &l), 1);
    assert_int_equal(s, 95);
    assert_int_equal(l, 5);
    assert_int_equal(http_range_parse("bytes=-500", 100, &s, &l), 1);
    assert_int_equal(s, 0);
    assert_int_equal(l, 100);
    assert_int_equal(http_range_parse("bytes=50-1000", 100, &s, &l), 1);
    assert_int_equal(l, 50);
    assert_int_equal(http_range_parse("bytes=100-", 100, &s, &l), -1);
    assert_int_equal(http_range_parse("bytes=-0", 100, &s, &l), -1);
    assert_int_equal(http_range_parse("bytes=0-1,5-6", 100, &s, &l), 0);
    assert_int_equal(http_range_parse("items=0-1", 100, &s, &l), 0);
    assert_int_equal(http_range_parse("bytes=5-1", 100, &s, &l), 0);
    assert_int_equal(http_range_parse("bytes=99999999999999999999999-", 100, &s, &l), 0);
}

static void
test_etags_and_dates(void **state)
{
    char etag[40], date[30];
    time_t t;
    http_etag_format(etag, sizeof(etag), 0x5f000000, 13);
    assert_string_equal(etag, "\"5f000000-d\"");
    assert_true(http_etag_match("\"5f000000-d\"", etag));
    assert_true(http_etag_match("\"a\", W/\"5f000000-d\"", etag));
    assert_true(http_etag_match("*", etag));
    assert_false(http_etag_match("\"5f000000-e\"", etag));
    assert_false(http_etag_match("", etag));
    /* If-Match compares strongly: a weak tag never matches, "*" always does. */
    assert_true(http_etag_list_match("\"a\", \"5f000000-d\"", etag, true));
    assert_false(http_etag_list_match("W/\"5f000000-d\"", etag, true));
    assert_true(http_etag_list_match("W/\"5f000000-d\"", etag, false));
    assert_true(http_etag_list_match("*", etag, true));
    assert_false(http_etag_list_match("\"5f000000-e\"", etag, true));

    http_date_format(784111777, date);
    assert_string_equal(date, "Sun, 06 Nov 1994 08:49:37 GMT");
    assert_int_equal(http_date_parse("Sun, 06 Nov 1994 08:49:37 GMT", &t), 0);
    assert_int_equal(t, 784111777);
    assert_int_equal(http_date_parse("Sunday, 06-Nov-94 08:49:37 GMT", &t), 0);
    assert_int_equal(t, 784111777);
    assert_int_equal(http_date_parse("Sun Nov  6 08:49:37 1994", &t), 0);
    assert_int_equal(t, 784111777);
    assert_int_equal(http_date_parse("yesterday", &t), -1);
}

/*
 * http_file_decide() over RFC 9110 §13.2.2's order: a 100-byte file modified at
 * 784111777 (Sun, 06 Nov 1994 08:49:37 GMT), validator "5f000000-64".
 */
#define ETAG "\"5f000000-64\""
#define LASTMOD "Sun, 06 Nov 1994 08:49:37 GMT"
#define BEFORE "Sun, 06 Nov 1994 08:49:36 GMT"      /* one second before mtime */
#define AFTER "Mon, 07 Nov 1994 08:49:37 GMT"

struct decide_case {
    const char *what;
    struct http_preconditions q;
    int status;
    uint64_t start, len;
};

static const struct decide_case decide_cases[] = {
    { "no validators", { .get = true }, 200, 0, 100 },
    { "HEAD ignores Range", { .range = "bytes=0-9" }, 200, 0, 100 },
    /* If-Match (§13.1.1): strong comparison, "*" matches any file. */
    { "If-Match ours", { .if_match = ETAG, .get = true }, 200, 0, 100 },
    { "If-Match in a list", { .if_match = "\"x\", " ETAG, .get = true }, 200, 0, 100 },
    { "If-Match *", { .if_match = "*", .get = true }, 200, 0, 100 },
    { "If-Match another", { .if_match = "\"x\"", .get = true }, 412, 0, 0 },
    { "If-Match weak", { .if_match = "W/" ETAG, .get = true }, 412, 0, 0 },
    { "If-Match fails before Range", { .if_match = "\"x\"", .range = "bytes=0-9", .get = true },
      412, 0, 0 },
    { "If-Match fails on HEAD", { .if_match = "\"x\"" }, 412, 0, 0 },
    /* If-Unmodified-Since (§13.1.4): only without If-Match; a bad date is ignored. */
    { "If-Unmodified-Since same", { .if_unmodified_since = LASTMOD, .get = true }, 200, 0, 100 },
    { "If-Unmodified-Since later", { .if_unmodified_since = AFTER, .get = true }, 200, 0, 100 },
    { "If-Unmodified-Since earlier", { .if_unmodified_since = BEFORE, .get = true }, 412, 0, 0 },
    { "If-Unmodified-Since garbage", { .if_unmodified_since = "soon", .get = true }, 200, 0, 100 },
    { "If-Match wins over I-U-S", { .if_match = ETAG, .if_unmodified_since = BEFORE, .get = true },
      200, 0, 100 },
    { "I-U-S fails with Range", { .if_unmodified_since = BEFORE, .range = "bytes=0-9", .get = true },
      412, 0, 0 },
    /* If-None-Match (§13.1.2): weak comparison. */
    { "If-None-Match ours", { .if_none_match = ETAG, .get = true }, 304, 0, 0 },
    { "If-None-Match weak", { .if_none_match = "W/" ETAG, .get = true }, 304, 0, 0 },
    { "If-None-Match *", { .if_none_match = "*", .get = true }, 304, 0, 0 },
    { "If-None-Match another", { .if_none_match = "\"x\"", .get = true }, 200, 0, 100 },
    { "If-None-Match beats Range", { .if_none_match = ETAG, .range = "bytes=0-9", .get = true },
      304, 0, 0 },
    { "412 before 304", { .if_match = "\"x\"", .if_none_match = ETAG, .get = true }, 412, 0, 0 },
    /* If-Modified-Since (§13.1.3): only without If-None-Match. */
    { "If-Modified-Since same", { .if_modified_since = LASTMOD, .get = true }, 304, 0, 0 },
    { "If-Modified-Since later", { .if_modified_since = AFTER, .get = true }, 304, 0, 0 },
    { "If-Modified-Since earlier", { .if_modified_since = BEFORE, .get = true }, 200, 0, 100 },
    { "If-Modified-Since garbage", { .if_modified_since = "x", .get = true }, 200, 0, 100 },
    { "If-None-Match wins over I-M-S", { .if_none_match = "\"x\"", .if_modified_since = AFTER,
      .get = true }, 200, 0, 100 },
    /* Range (§14.2) and If-Range (§13.1.5): an exact match of ours, else the whole file. */
    { "Range", { .range = "bytes=10-19", .get = true }, 206, 10, 10 },
    { "Range suffix", { .range = "bytes=-5", .get = true }, 206, 95, 5 },
    { "Range past the end", { .range = "bytes=100-", .get = true }, 416, 0, 0 },
    { "Range malformed", { .range = "bytes=x-y", .get = true }, 200, 0, 100 },
    { "Range several", { .range = "bytes=0-1,5-6", .get = true }, 200, 0, 100 },
    { "If-Range our etag", { .range = "bytes=0-9", .if_range = ETAG, .get = true }, 206, 0, 10 },
    { "If-Range another etag", { .range = "bytes=0-9", .if_range = "\"x\"", .get = true },
      200, 0, 100 },
    { "If-Range weak", { .range = "bytes=0-9", .if_range = "W/" ETAG, .get = true }, 200, 0, 100 },
    { "If-Range our date", { .range = "bytes=0-9", .if_range = LASTMOD, .get = true }, 206, 0, 10 },
    { "If-Range other date", { .range = "bytes=0-9", .if_range = AFTER, .get = true },
      200, 0, 100 },
    { "If-Range unsatisfiable", { .range = "bytes=200-", .if_range = ETAG, .get = true },
      416, 0, 0 },
    { "If-Range failing skips 416", { .range = "bytes=200-", .if_range = "\"x\"", .get = true },
      200, 0, 100 },
    { "all pass then Range", { .if_match = ETAG, .if_none_match = "\"x\"", .range = "bytes=-1",
      .if_range = ETAG, .get = true }, 206, 99, 1 },
};

static void
test_file_decide_follows_rfc9110_order(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(decide_cases) / sizeof(decide_cases[0]); i++) {
        const struct decide_case *c = &decide_cases[i];
        struct http_file_answer a = http_file_decide(&c->q, ETAG, LASTMOD, 784111777, 100);

        if (a.status != c->status || (c->status / 100 == 2 && (a.start != c->start ||
                                                               a.len != c->len)))
            fail_msg("%s: got %d (%llu+%llu), want %d (%llu+%llu)", c->what, a.status,
                     (unsigned long long)a.start, (unsigned long long)a.len, c->status,
                     (unsigned long long)c->start, (unsigned long long)c->len);
    }
}

/* An empty file: any byte range is unsatisfiable; validators still work. */
static void
test_file_decide_empty_file(void **state)
{
    struct http_preconditions q = { .range = "bytes=0-", .get = true };
    struct http_file_answer a;

    (void)state;
    a = http_file_decide(&q, "\"0-0\"", "Thu, 01 Jan 1970 00:00:00 GMT", 0, 0);
    assert_int_equal(a.status, 416);
    q.range = NULL;
    a = http_file_decide(&q, "\"0-0\"", "Thu, 01 Jan 1970 00:00:00 GMT", 0, 0);
    assert_int_equal(a.status, 200);
    assert_int_equal(a.len, 0);
    q.if_none_match = "\"0-0\"";
    assert_int_equal(http_file_decide(&q, "\"0-0\"", "x", 0, 0).status, 304);
}

/* A root with a file, a subdir, and symlinks pointing in and out. */
struct tree {
    char dir[64];
    char outside[80];
    int rootfd;
    char *real;
};

static int
tree_setup(void **state)
{
    struct tree *t = calloc(1, sizeof(*t));
    char p[256];
    strcpy(t->dir, "/tmp/weft-http-unit-XXXXXX");
    if (mkdtemp(t->dir) == NULL)
        return -1;
    snprintf(p, sizeof(p), "%s/root", t->dir);
    mkdir(p, 0755);
    snprintf(p, sizeof(p), "%s/root/sub", t->dir);
    mkdir(p, 0755);
    snprintf(p, sizeof(p), "%s/root/sub/f.txt", t->dir);
    FILE *f = fopen(p, "w");
    fputs("inside", f);
    fclose(f);
    snprintf(t->outside, sizeof(t->outside), "%s/secret", t->dir);
    f = fopen(t->outside, "w");
    fputs("secret", f);
    fclose(f);
    snprintf(p, sizeof(p), "%s/root/out", t->dir);
    if (symlink(t->outside, p) < 0)
        return -1;
    snprintf(p, sizeof(p), "%s/root/in", t->dir);
    if (symlink("sub/f.txt", p) < 0)
        return -1;
    snprintf(p, sizeof(p), "%s/root/updir", t->dir);
    if (symlink("..", p) < 0)
        return -1;
    snprintf(p, sizeof(p), "%s/root", t->dir);
    t->rootfd = open(p, O_RDONLY | O_DIRECTORY);
    t->real = realpath(p, NULL);
    *state = t;
    return t->rootfd >= 0 ? 0 : -1;
}

static int
tree_teardown(void **state)
{
    struct tree *t = *state;
    char cmd[128];
    close(t->rootfd);
    free(t->real);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t->dir);
    if (system(cmd) != 0)
        return -1;
    free(t);
    return 0;
}

typedef int open_fn(int rootfd, const char *root_real, const char *relpath, bool follow);

static void
check_open_beneath(struct tree *t, open_fn *op)
{
    int fd = op(t->rootfd, t->real, "sub/f.txt", false);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(op(t->rootfd, t->real, "nope", false), -ENOENT);
    /* no symlinks at all when follow_symlinks is off */
    assert_true(op(t->rootfd, t->real, "in", false) < 0);
    assert_true(op(t->rootfd, t->real, "out", false) < 0);
    /* with it on: inside is fine, outside never */
    fd = op(t->rootfd, t->real, "in", true);
    assert_true(fd >= 0);
    close(fd);
    assert_true(op(t->rootfd, t->real, "out", true) < 0);
    assert_true(op(t->rootfd, t->real, "updir/secret", true) < 0);
    assert_true(op(t->rootfd, t->real, "../secret", true) < 0);
    assert_true(op(t->rootfd, t->real, "../secret", false) < 0);
    fd = op(t->rootfd, t->real, "", false);
    assert_true(fd >= 0);
    close(fd);
}

static void
test_open_beneath_root(void **state)
{
    check_open_beneath(*state, http_open_beneath);
}

static void
test_open_walk_fallback_is_as_strict(void **state)
{
    check_open_beneath(*state, http_open_walk);
}

static void
test_cache_serves_and_revalidates(void **state)
{
    struct tree *t = *state;
    struct http_cache *c = http_cache_new(16, 24);
    struct stat st;
    char p[256];
    assert_non_null(c);
    int fd = http_open_beneath(t->rootfd, t->real, "sub/f.txt", false);
    assert_true(fd >= 0);
    assert_int_equal(fstat(fd, &st), 0);
    const struct http_cached *e = http_cache_put(c, "/sub/f.txt", fd, &st, "text/plain", 1000);
    close(fd);
    assert_non_null(e);
    assert_int_equal(e->size, 6);
    assert_memory_equal(e->data, "inside", 6);
    assert_non_null(http_cache_get(c, "/sub/f.txt", 1500));
    assert_null(http_cache_get(c, "/sub/f.txt", 2000));     /* a second old: recheck */
    assert_null(http_cache_get(c, "/other", 1500));

    /* the file changes size: the entry is replaced */
    snprintf(p, sizeof(p), "%s/root/sub/f.txt", t->dir);
    FILE *f = fopen(p, "w");
    fputs("changed!", f);
    fclose(f);
    fd = open(p, O_RDONLY);
    fstat(fd, &st);
    e = http_cache_put(c, "/sub/f.txt", fd, &st, "text/plain", 2000);
    close(fd);
    assert_non_null(e);
    assert_memory_equal(e->data, "changed!", 8);
    assert_int_equal(http_cache_count(c), 1);

    /* too big for max_file: not cached; the total stays bounded */
    f = fopen(p, "w");
    fputs("0123456789abcdefXYZ", f);
    fclose(f);
    fd = open(p, O_RDONLY);
    fstat(fd, &st);
    assert_null(http_cache_put(c, "/sub/f.txt", fd, &st, "text/plain", 3000));
    close(fd);
    assert_int_equal(http_cache_count(c), 0);
    assert_true(http_cache_bytes(c) <= 24);
    http_cache_free(c);
}

static void
test_cache_head_follows_size_and_mtime(void **state)
{
    (void)state;
    struct http_cache *c = http_cache_new(16, 24);
    struct stat st = { .st_mode = S_IFREG | 0644, .st_size = 1048576, .st_mtime = 784111777 };
    char want[400];
    assert_non_null(c);
    const struct http_cached *h = http_cache_head(c, "/big.bin", &st, "application/x-big");
    assert_non_null(h);
    assert_null(h->data);
    assert_int_equal(h->size, 1048576);
    assert_string_equal(h->last_modified, "Sun, 06 Nov 1994 08:49:37 GMT");
    snprintf(want, sizeof(want), "Content-Type: application/x-big\r\nContent-Length: 1048576\r\n"
             "Last-Modified: Sun, 06 Nov 1994 08:49:37 GMT\r\nETag: %s\r\n"
             "Accept-Ranges: bytes\r\n", h->etag);
    assert_int_equal(h->headers_len, strlen(want));
    assert_memory_equal(h->headers, want, h->headers_len);
    char etag[40];
    snprintf(etag, sizeof(etag), "%s", h->etag);

    /* the same stat: the same head; another mtime or size: made again */
    assert_ptr_equal(http_cache_head(c, "/big.bin", &st, "application/x-big"), h);
    st.st_mtime++;
    h = http_cache_head(c, "/big.bin", &st, "application/x-big");
    assert_string_equal(h->last_modified, "Sun, 06 Nov 1994 08:49:38 GMT");
    assert_string_not_equal(h->etag, etag);
    st.st_size = 5;
    h = http_cache_head(c, "/big.bin", &st, "application/x-big");
    assert_non_null(strstr(h->headers, "Content-Length: 5\r\n"));
    /* another path in the same slot or not: its own head */
    h = http_cache_head(c, "/other.bin", &st, "text/plain");
    assert_non_null(strstr(h->headers, "Content-Type: text/plain\r\n"));
    assert_int_equal(http_cache_count(c), 0);       /* no bytes kept: heads only */
    http_cache_free(c);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_normalise_clean_paths),
        cmocka_unit_test(test_normalise_removes_dot_segments),
        cmocka_unit_test(test_normalise_refuses_traversal_in_every_encoding),
        cmocka_unit_test(test_dotfiles_are_detected),
        cmocka_unit_test(test_mime_table),
        cmocka_unit_test(test_ranges),
        cmocka_unit_test(test_etags_and_dates),
        cmocka_unit_test(test_file_decide_follows_rfc9110_order),
        cmocka_unit_test(test_file_decide_empty_file),
        cmocka_unit_test_setup_teardown(test_open_beneath_root, tree_setup, tree_teardown),
        cmocka_unit_test_setup_teardown(test_open_walk_fallback_is_as_strict, tree_setup,
                                        tree_teardown),
        cmocka_unit_test_setup_teardown(test_cache_serves_and_revalidates, tree_setup,
                                        tree_teardown),
        cmocka_unit_test(test_cache_head_follows_size_and_mtime),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
