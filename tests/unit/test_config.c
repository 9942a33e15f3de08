/* SPDX-License-Identifier: MIT */
/* test_config.c: weftd's config parser: good files, and every error with its file:line:key. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <weft/weft.h>

#include "config.h"

/* Parse text as the file "t.conf"; the test owns the result. */
static struct config *
load(const char *text, int *rc_out)
{
    struct config *c = NULL;
    int rc = config_load_mem("t.conf", text, strlen(text), &c);

    assert_non_null(c);
    if (rc_out != NULL)
        *rc_out = rc;
    return c;
}

static void
dump(const struct config *c)
{
    for (size_t i = 0; i < c->nerrors; i++)
        print_message("  error: %s\n", c->errors[i].msg);
}

/* True if some error message contains every needle (NULL-terminated). */
static bool
has_error(const struct config *c, ...)
{
    for (size_t i = 0; i < c->nerrors; i++) {
        const char *needle;
        bool all = true;
        va_list ap;

        va_start(ap, c);
        while ((needle = va_arg(ap, const char *)) != NULL)
            all = all && strstr(c->errors[i].msg, needle) != NULL;
        va_end(ap);
        if (all)
            return true;
    }
    dump(c);
    return false;
}

/* Exactly one error, containing every needle. */
static void
expect_one_error(const char *text, const char *a, const char *b, const char *d)
{
    int rc;
    struct config *c = load(text, &rc);

    assert_int_equal(rc, -WEFT_ECONFIG);
    if (c->nerrors != 1)
        dump(c);
    assert_int_equal(c->nerrors, 1);
    assert_true(has_error(c, a, b, d, NULL));
    config_free(c);
}

static void
test_good_config_is_parsed(void **state)
{
    int rc;
    struct config *c = load("; a comment\n"
                            "# another\n"
                            "[weftd]\n"
                            "log_level = debug\n"
                            "shutdown_timeout = 500ms ; inline comment\n"
                            "\n"
                            "[echo]\n"
                            "protocol = echo\n"
                            "listen = 127.0.0.1:7007, [::1]:7008 , *:7009\n"
                            "color = blue\n"
                            "size: 3\n"
                            "[echo2]\n"
                            "protocol=echo\n"
                            "listen=localhost:7010\n",
                            &rc);
    const struct conf_service *s;
    const struct sockaddr_in *sin;
    const struct sockaddr_in6 *sin6;

    (void)state;
    dump(c);
    assert_int_equal(rc, 0);
    assert_int_equal(c->nerrors, 0);
    assert_int_equal(c->g.log_level, WEFT_LOG_DEBUG);
    assert_int_equal(c->g.shutdown_ms, 500);
    assert_string_equal(c->g.plugin_dir, "");
    assert_int_equal(c->nservices, 2);

    s = c->services[0];
    assert_string_equal(s->name, "echo");
    assert_int_equal(s->line, 7);
    assert_string_equal(s->protocol, "echo");
    assert_int_equal(s->protocol_line, 8);
    assert_int_equal(s->nlisten, 3);
    assert_string_equal(s->listen[0].text, "127.0.0.1:7007");
    assert_string_equal(s->listen[1].text, "[::1]:7008");
    assert_string_equal(s->listen[2].text, "*:7009");
    assert_int_equal(s->listen[0].line, 9);
    sin = (const void *)&s->listen[0].addr;
    assert_int_equal(sin->sin_family, AF_INET);
    assert_int_equal(ntohs(sin->sin_port), 7007);
    assert_int_equal(ntohl(sin->sin_addr.s_addr), INADDR_LOOPBACK);
    sin6 = (const void *)&s->listen[1].addr;
    assert_int_equal(sin6->sin6_family, AF_INET6);
    assert_int_equal(ntohs(sin6->sin6_port), 7008);
    assert_true(IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr));
    sin = (const void *)&s->listen[2].addr;
    assert_int_equal(ntohl(sin->sin_addr.s_addr), INADDR_ANY);
    /* Plugin keys, in file order, with their lines. */
    assert_int_equal(s->nkeys, 2);
    assert_string_equal(s->keys[0].key, "color");
    assert_string_equal(s->keys[0].value, "blue");
    assert_int_equal(s->keys[0].line, 10);
    assert_string_equal(s->keys[1].key, "size");
    assert_string_equal(s->keys[1].value, "3");

    s = c->services[1];
    assert_string_equal(s->name, "echo2");
    sin = (const void *)&s->listen[0].addr;
    assert_int_equal(ntohl(sin->sin_addr.s_addr), INADDR_LOOPBACK);
    config_free(c);
}

static void
test_defaults_come_from_the_key_table(void **state)
{
    int rc;
    struct config *c = load("[weftd]\n", &rc);

    (void)state;
    assert_int_equal(rc, 0);
    assert_int_equal(c->g.log_level, WEFT_LOG_INFO);
    assert_int_equal(c->g.shutdown_ms, 10000);
    assert_int_equal(c->g.reload_ms, 0);     /* a reload waits for connections to end */
    assert_string_equal(c->g.plugin_dir, "");
    config_free(c);
}

static void
test_reload_timeout_is_a_duration(void **state)
{
    int rc;
    struct config *c = load("[weftd]\nreload_timeout = 2m\n", &rc);

    (void)state;
    assert_int_equal(rc, 0);
    assert_int_equal(c->g.reload_ms, 120000);
    config_free(c);
    expect_one_error("[weftd]\nreload_timeout = soon\n", "t.conf:2:", "reload_timeout:",
                     "bad duration");
}

static void
test_bom_and_crlf_are_accepted(void **state)
{
    int rc;
    struct config *c = load("\xEF\xBB\xBF[weftd]\r\nlog_level = error\r\n", &rc);

    (void)state;
    dump(c);
    assert_int_equal(rc, 0);
    assert_int_equal(c->g.log_level, WEFT_LOG_ERR);
    config_free(c);
}

static void
test_unknown_global_key_names_file_line_and_key(void **state)
{
    int rc;
    struct config *c = load("[weftd]\nbogus = 1\n", &rc);

    (void)state;
    assert_int_equal(rc, -WEFT_ECONFIG);
    assert_int_equal(c->nerrors, 1);
    assert_string_equal(c->errors[0].msg,
                        "t.conf:2: [weftd] bogus: unknown key "
                        "(known: plugin_dir, log_level, shutdown_timeout, workers, user, "
                        "group, max_connections, reload_timeout)");
    config_free(c);
}

static void
test_bad_log_level(void **state)
{
    (void)state;
    expect_one_error("[weftd]\n\nlog_level = loud\n", "t.conf:3:", "[weftd] log_level:",
                     "\"loud\"");
}

static void
test_bad_durations(void **state)
{
    (void)state;
    expect_one_error("[weftd]\nshutdown_timeout = 10 parsecs\n", "t.conf:2:",
                     "shutdown_timeout:", "bad duration");
    expect_one_error("[weftd]\nshutdown_timeout = 5x\n", "t.conf:2:", "shutdown_timeout",
                     "bad duration");
    expect_one_error("[weftd]\nshutdown_timeout = -1\n", "t.conf:2:", "shutdown_timeout",
                     "bad duration");
    expect_one_error("[weftd]\nshutdown_timeout = 25h\n", "t.conf:2:", "shutdown_timeout",
                     "longer than 24h");
    expect_one_error("[weftd]\nshutdown_timeout = 99999999999999999999999s\n", "t.conf:2:",
                     "shutdown_timeout", "longer than 24h");
}

static void
test_durations_parse(void **state)
{
    char why[128];
    uint64_t ms = 1;

    (void)state;
    assert_int_equal(config_parse_duration("0", &ms, why, sizeof(why)), 0);
    assert_int_equal(ms, 0);
    assert_int_equal(config_parse_duration("500ms", &ms, why, sizeof(why)), 0);
    assert_int_equal(ms, 500);
    assert_int_equal(config_parse_duration("10s", &ms, why, sizeof(why)), 0);
    assert_int_equal(ms, 10000);
    assert_int_equal(config_parse_duration("7", &ms, why, sizeof(why)), 0);
    assert_int_equal(ms, 7000);
    assert_int_equal(config_parse_duration("2m", &ms, why, sizeof(why)), 0);
    assert_int_equal(ms, 120000);
    assert_int_equal(config_parse_duration("1h", &ms, why, sizeof(why)), 0);
    assert_int_equal(ms, 3600000);
    assert_int_equal(config_parse_duration("", &ms, why, sizeof(why)), -WEFT_ECONFIG);
    assert_int_equal(config_parse_duration("s", &ms, why, sizeof(why)), -WEFT_ECONFIG);
    assert_int_equal(config_parse_duration("1 s", &ms, why, sizeof(why)), -WEFT_ECONFIG);
}

static void
test_relative_plugin_dir_is_relative_to_the_file(void **state)
{
    struct config *c = NULL;
    const char *text = "[weftd]\nplugin_dir = plugins\n";

    (void)state;
    assert_int_equal(config_load_mem("/etc/weft/weftd.conf", text, strlen(text), &c), 0);
    assert_string_equal(c->g.plugin_dir, "/etc/weft/plugins");
    config_free(c);
    text = "[weftd]\nplugin_dir = /opt/weft\n";
    assert_int_equal(config_load_mem("/etc/weft/weftd.conf", text, strlen(text), &c), 0);
    assert_string_equal(c->g.plugin_dir, "/opt/weft");
    config_free(c);
    /* A search path: ':' or ',' between directories, each relative one to the file. */
    text = "[weftd]\nplugin_dir = mine, /opt/weft:: more ,\n";
    assert_int_equal(config_load_mem("/etc/weft/weftd.conf", text, strlen(text), &c), 0);
    assert_string_equal(c->g.plugin_dir, "/etc/weft/mine:/opt/weft:/etc/weft/more");
    config_free(c);
    text = "[weftd]\nplugin_dir = a,b\n";
    assert_int_equal(config_load_mem("weftd.conf", text, strlen(text), &c), 0);
    assert_string_equal(c->g.plugin_dir, "a:b");
    config_free(c);
}

static void
listen_error(const char *value, const char *needle)
{
    char text[256];

    snprintf(text, sizeof(text), "[svc]\nprotocol = echo\nlisten = %s\n", value);
    expect_one_error(text, "t.conf:3:", "[svc] listen:", needle);
}

static void
test_bad_listen_values(void **state)
{
    (void)state;
    listen_error("127.0.0.1:0", "bad port \"0\" (a number from 1 to 65535)");
    listen_error("127.0.0.1:99999", "bad port \"99999\"");
    listen_error("127.0.0.1:70000000000000000000", "bad port");
    listen_error("127.0.0.1:http", "bad port \"http\"");
    listen_error("127.0.0.1:", "bad port \"\"");
    listen_error("127.0.0.1", "expected HOST:PORT");
    listen_error("7007", "expected HOST:PORT");
    listen_error(":7007", "missing host");
    listen_error("::1:7007", "IPv6 address goes in brackets");
    listen_error("[::1]7007", "expected [IPv6]:PORT");
    listen_error("[::1:7007", "missing ']'");
    listen_error("[127.0.0.1]:7007", "not a numeric IPv6 address");
    listen_error("example.com:80", "\"example.com\" is not a numeric IPv4");
    listen_error("300.1.1.1:80", "not a numeric IPv4");
    listen_error("", "empty value");
    listen_error(" , ", "empty value");
}

static void
test_every_bad_address_of_a_list_is_reported(void **state)
{
    int rc;
    struct config *c = load("[svc]\nprotocol = echo\n"
                            "listen = 127.0.0.1:0, 127.0.0.1:7007, nope:1\n",
                            &rc);

    (void)state;
    assert_int_equal(rc, -WEFT_ECONFIG);
    assert_int_equal(c->nerrors, 2);
    assert_true(has_error(c, "t.conf:3:", "bad port \"0\"", NULL));
    assert_true(has_error(c, "t.conf:3:", "\"nope\"", NULL));
    assert_int_equal(c->services[0]->nlisten, 1);
    config_free(c);
}

static void
test_duplicate_listen_names_both_lines(void **state)
{
    int rc;
    struct config *c = load("[a]\n"
                            "protocol = echo\n"
                            "listen = 127.0.0.1:7007\n"
                            "[b]\n"
                            "protocol = echo\n"
                            "listen = [::1]:7008, 127.0.0.1:7007\n"
                            "[c]\n"
                            "protocol = echo\n"
                            "listen = *:7009, 0.0.0.0:7009\n",
                            &rc);

    (void)state;
    assert_int_equal(rc, -WEFT_ECONFIG);
    assert_int_equal(c->nerrors, 2);
    assert_true(has_error(c, "t.conf:6: [b] listen: 127.0.0.1:7007 is already listed by [a] "
                             "at line 3", NULL));
    /* "*" is 0.0.0.0: the same address written twice on one line. */
    assert_true(has_error(c, "t.conf:9: [c] listen: 0.0.0.0:7009 is already listed by [c] "
                             "at line 9", NULL));
    config_free(c);
}

static void
test_unix_listen_addresses_mix_with_tcp(void **state)
{
    int rc;
    struct config *c = load("[a]\n"
                            "protocol = echo\n"
                            "listen = 127.0.0.1:7007, unix:/run/weft/echo.sock, unix:@weft-echo\n"
                            "[b]\n"
                            "protocol = echo\n"
                            "listen = unix:/run/weft/b.sock\n",
                            &rc);
    const struct conf_service *s;
    const struct sockaddr_un *sun;
    char buf[160];

    (void)state;
    if (rc != 0)
        dump(c);
    assert_int_equal(rc, 0);
    s = c->services[0];
    assert_int_equal(s->nlisten, 3);
    assert_int_equal(s->listen[0].kind, CONF_LISTEN_TCP);
    assert_int_equal(s->listen[1].kind, CONF_LISTEN_UNIX);
    assert_string_equal(s->listen[1].text, "unix:/run/weft/echo.sock");
    sun = (const void *)&s->listen[1].addr;
    assert_int_equal(sun->sun_family, AF_UNIX);
    assert_string_equal(sun->sun_path, "/run/weft/echo.sock");
    assert_int_equal(s->listen[1].addrlen, offsetof(struct sockaddr_un, sun_path) + 20);
    assert_string_equal(config_addr_string((const void *)sun, buf, sizeof(buf)),
                        "unix:/run/weft/echo.sock");
    /* Abstract: a NUL, then the name's bytes and no terminator in the length. */
    sun = (const void *)&s->listen[2].addr;
    assert_int_equal(sun->sun_path[0], '\0');
    assert_string_equal(sun->sun_path + 1, "weft-echo");
    assert_int_equal(s->listen[2].addrlen, offsetof(struct sockaddr_un, sun_path) + 10);
    assert_string_equal(config_addr_string((const void *)sun, buf, sizeof(buf)),
                        "unix:@weft-echo");
    config_free(c);
}

static void
test_bad_unix_listen_values(void **state)
{
    char longpath[160];

    (void)state;
    listen_error("unix:run/echo.sock", "expected an absolute path");
    listen_error("unix:", "expected an absolute path");
    listen_error("unix:@", "missing name after @");
    listen_error("unix:/", "missing file name");
    listen_error("unix:/run/weft/", "names a directory");
    memset(longpath, 'a', sizeof(longpath));
    memcpy(longpath, "unix:/", 6);
    longpath[sizeof(longpath) - 1] = '\0';
    listen_error(longpath, "unix socket path longer than 107 bytes");
    /* The same path twice, in two services, is an error naming both lines. */
    expect_one_error("[a]\nprotocol = echo\nlisten = unix:/run/x.sock\n"
                     "[b]\nprotocol = echo\nlisten = 127.0.0.1:7, unix:/run/x.sock\n",
                     "t.conf:6:", "[b] listen:",
                     "unix:/run/x.sock is already listed by [a] at line 3");
}

static void
test_wildcard_overlap_names_both_lines(void **state)
{
    int rc;
    struct config *c = load("[a]\n"
                            "protocol = echo\n"
                            "listen = *:7010\n"
                            "[b]\n"
                            "protocol = echo\n"
                            "listen = 127.0.0.1:7010, 127.0.0.1:7011\n"
                            "[c]\n"
                            "protocol = echo\n"
                            "listen = [::1]:7012, [::]:7012\n",
                            &rc);

    (void)state;
    assert_int_equal(rc, -WEFT_ECONFIG);
    if (c->nerrors != 2)
        dump(c);
    assert_int_equal(c->nerrors, 2);
    assert_true(has_error(c, "t.conf:6: [b] listen: 127.0.0.1:7010 overlaps *:7010 of [a] at "
                             "line 3", NULL));
    assert_true(has_error(c, "t.conf:9: [c] listen: [::]:7012 overlaps [::1]:7012 of [c] at "
                             "line 9", NULL));
    config_free(c);
}

static void
test_unknown_key_suggests_the_closest(void **state)
{
    char buf[64];
    int rc;
    struct config *c = load("[weftd]\nlog_levle = info\nshutdown_timout = 1s\nbanana = 1\n", &rc);

    (void)state;
    assert_int_equal(rc, -WEFT_ECONFIG);
    assert_true(has_error(c, "t.conf:2: [weftd] log_levle: unknown key; did you mean log_level?",
                          NULL));
    assert_true(has_error(c, "t.conf:3: [weftd] shutdown_timout: unknown key; did you mean "
                             "shutdown_timeout?", NULL));
    assert_true(has_error(c, "t.conf:4: [weftd] banana: unknown key (known:", NULL));
    config_free(c);
    assert_string_equal(config_did_you_mean("keepalive_timout", "root, index, keepalive_timeout, "
                                            "header_timeout", buf, sizeof(buf)),
                        "keepalive_timeout");
    assert_string_equal(config_did_you_mean("rot", "root, index", buf, sizeof(buf)), "root");
    assert_null(config_did_you_mean("zzzzzz", "root, index", buf, sizeof(buf)));
    assert_null(config_did_you_mean("root", "root, index", buf, sizeof(buf)));  /* known */
}

static void
test_service_needs_protocol_and_listen(void **state)
{
    int rc;
    struct config *c = load("[weftd]\n\n[lonely]\ncolor = red\n", &rc);

    (void)state;
    assert_int_equal(rc, -WEFT_ECONFIG);
    assert_int_equal(c->nerrors, 2);
    assert_true(has_error(c, "t.conf:3: [lonely]: missing \"protocol = NAME\"", NULL));
    assert_true(has_error(c, "t.conf:3: [lonely]: missing \"listen = HOST:PORT\"", NULL));
    config_free(c);
}

static void
test_bad_protocol_name(void **state)
{
    (void)state;
    expect_one_error("[svc]\nlisten = 127.0.0.1:1\nprotocol = ../../tmp/evil\n", "t.conf:3:",
                     "[svc] protocol:", "bad protocol name");
}

static void
test_duplicates(void **state)
{
    (void)state;
    expect_one_error("[weftd]\nlog_level = info\nlog_level = debug\n", "t.conf:3:",
                     "[weftd] log_level:", "set twice (first at line 2)");
    expect_one_error("[s]\nprotocol = echo\nlisten = 127.0.0.1:1\ncolor = 1\ncolor = 2\n",
                     "t.conf:5:", "[s] color:", "set twice (first at line 4)");
    expect_one_error("[s]\nprotocol = echo\nlisten = 127.0.0.1:1\n[s]\nprotocol = echo\n",
                     "t.conf:4:", "[s]:", "section appears twice (first at line 1)");
    expect_one_error("[weftd]\n[weftd]\nlog_level = nonsense\n", "t.conf:2:", "[weftd]:",
                     "section appears twice");
}

static void
test_syntax_errors_are_all_reported(void **state)
{
    int rc;
    struct config *c = load("stray = 1\n"
                            "[weftd]\n"
                            "just some words\n"
                            "[unterminated\n"
                            "[weftd2] trailing\n"
                            "[bad name]\n"
                            "[]\n"
                            "= value\n",
                            &rc);

    (void)state;
    assert_int_equal(rc, -WEFT_ECONFIG);
    assert_true(has_error(c, "t.conf:1: stray: key outside any section", NULL));
    assert_true(has_error(c, "t.conf:3: syntax error", NULL));
    assert_true(has_error(c, "t.conf:4: section header without ']'", NULL));
    assert_true(has_error(c, "t.conf:5: text after the section header", NULL));
    assert_true(has_error(c, "t.conf:6: bad section name \"[bad name]\"", NULL));
    assert_true(has_error(c, "t.conf:7: bad section name \"[]\"", NULL));
    assert_int_equal(c->nerrors, 6);
    /* In file order. */
    for (size_t i = 1; i < c->nerrors; i++)
        assert_true(c->errors[i - 1].line <= c->errors[i].line);
    config_free(c);
}

static void
test_missing_key_name(void **state)
{
    (void)state;
    expect_one_error("[weftd]\n= value\n", "t.conf:2:", "[weftd]:", "missing key name");
}

static void
test_long_line_is_an_error_not_a_split(void **state)
{
    char text[1024];
    int n = snprintf(text, sizeof(text), "[weftd]\nplugin_dir = /");

    (void)state;
    memset(text + n, 'x', 500);
    strcpy(text + n + 500, "\nlog_level = debug\n");
    expect_one_error(text, "t.conf:2:", "line longer than", "characters");
}

static void
test_nul_byte_is_an_error(void **state)
{
    static const char text[] = "[weftd]\nlog_level = de\0bug\n";
    struct config *c = NULL;

    (void)state;
    assert_int_equal(config_load_mem("t.conf", text, sizeof(text) - 1, &c), -WEFT_ECONFIG);
    assert_true(has_error(c, "t.conf:2:", "NUL byte", NULL));
    config_free(c);
}

static void
test_errors_in_every_part_are_collected(void **state)
{
    int rc;
    struct config *c = load("[weftd]\n"
                            "log_level = chatty\n"
                            "colour = 1\n"
                            "[s]\n"
                            "protocol = echo\n"
                            "listen = 1.2.3.4:0\n",
                            &rc);

    (void)state;
    assert_int_equal(rc, -WEFT_ECONFIG);
    assert_int_equal(c->nerrors, 3);
    assert_int_equal(c->errors[0].line, 2);
    assert_int_equal(c->errors[1].line, 3);
    assert_int_equal(c->errors[2].line, 6);
    config_free(c);
}

static void
test_missing_file_names_the_file(void **state)
{
    struct config *c = NULL;

    (void)state;
    assert_int_equal(config_load("/nonexistent/weftd.conf", &c), -ENOENT);
    assert_non_null(c);
    assert_int_equal(c->nerrors, 1);
    assert_string_equal(c->errors[0].msg,
                        "/nonexistent/weftd.conf: cannot read: No such file or directory");
    config_free(c);
}

static void
test_directory_is_not_a_config(void **state)
{
    struct config *c = NULL;

    (void)state;
    assert_int_equal(config_load("/tmp", &c), -EISDIR);
    assert_true(has_error(c, "/tmp: cannot read: Is a directory", NULL));
    config_free(c);
}

static void
test_unreadable_file_names_the_file(void **state)
{
    char path[] = "/tmp/weft-conf-XXXXXX";
    struct config *c = NULL;
    int fd = mkstemp(path);

    (void)state;
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "[weftd]\n", 8), 8);
    close(fd);
    assert_int_equal(chmod(path, 0), 0);
    if (geteuid() == 0) {
        /* root reads anything: check the good path instead. */
        assert_int_equal(config_load(path, &c), 0);
    } else {
        assert_int_equal(config_load(path, &c), -EACCES);
        assert_true(has_error(c, path, ": cannot read: Permission denied", NULL));
    }
    config_free(c);
    unlink(path);
}

static void
test_file_is_read_with_lines(void **state)
{
    char path[] = "/tmp/weft-conf-XXXXXX";
    const char *text = "[weftd]\n\n\nlog_level = shout\n";
    struct config *c = NULL;
    int fd = mkstemp(path);

    (void)state;
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    assert_int_equal(config_load(path, &c), -WEFT_ECONFIG);
    assert_true(has_error(c, path, ":4: [weftd] log_level: bad value \"shout\"", NULL));
    config_free(c);
    unlink(path);
}

static void
test_addr_string(void **state)
{
    struct sockaddr_storage ss;
    socklen_t len;
    char why[128], buf[80];

    (void)state;
    assert_int_equal(config_parse_listen("[::1]:80", &ss, &len, why, sizeof(why)), 0);
    assert_string_equal(config_addr_string((struct sockaddr *)&ss, buf, sizeof(buf)),
                        "[::1]:80");
    assert_int_equal(config_parse_listen("*:65535", &ss, &len, why, sizeof(why)), 0);
    assert_string_equal(config_addr_string((struct sockaddr *)&ss, buf, sizeof(buf)),
                        "0.0.0.0:65535");
    assert_int_equal(config_parse_listen("[::]:1", &ss, &len, why, sizeof(why)), 0);
    assert_string_equal(config_addr_string((struct sockaddr *)&ss, buf, sizeof(buf)),
                        "[::]:1");
}

/* udp: addresses are a kind of their own: TCP and UDP on one port do not overlap. */
static void
test_udp_listen_addresses(void **state)
{
    int rc;
    struct config *c = load("[e]\nprotocol = echo\n"
                            "listen = 127.0.0.1:7, udp:127.0.0.1:7, udp:[::1]:7, *:9\n", &rc);
    const struct conf_service *s;

    (void)state;
    assert_int_equal(rc, 0);
    s = c->services[0];
    assert_int_equal(s->nlisten, 4);
    assert_int_equal(s->listen[0].kind, CONF_LISTEN_TCP);
    assert_int_equal(s->listen[1].kind, CONF_LISTEN_UDP);
    assert_string_equal(s->listen[1].text, "udp:127.0.0.1:7");
    assert_int_equal(s->listen[2].kind, CONF_LISTEN_UDP);
    assert_int_equal(s->listen[2].addr.ss_family, AF_INET6);
    assert_int_equal(s->listen[3].kind, CONF_LISTEN_TCP);
    config_free(c);
    expect_one_error("[e]\nprotocol = echo\nlisten = udp:127.0.0.1:7, udp:127.0.0.1:7\n",
                     "t.conf:3:", "[e] listen:", "already listed");
    expect_one_error("[e]\nprotocol = echo\nlisten = udp:*:7, udp:127.0.0.1:7\n",
                     "t.conf:3:", "[e] listen:", "overlaps");
    expect_one_error("[e]\nprotocol = echo\nlisten = udp:127.0.0.1\n",
                     "t.conf:3:", "[e] listen:", "expected HOST:PORT");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_config_is_parsed),
        cmocka_unit_test(test_defaults_come_from_the_key_table),
        cmocka_unit_test(test_reload_timeout_is_a_duration),
        cmocka_unit_test(test_bom_and_crlf_are_accepted),
        cmocka_unit_test(test_unknown_global_key_names_file_line_and_key),
        cmocka_unit_test(test_bad_log_level),
        cmocka_unit_test(test_bad_durations),
        cmocka_unit_test(test_durations_parse),
        cmocka_unit_test(test_relative_plugin_dir_is_relative_to_the_file),
        cmocka_unit_test(test_bad_listen_values),
        cmocka_unit_test(test_every_bad_address_of_a_list_is_reported),
        cmocka_unit_test(test_duplicate_listen_names_both_lines),
        cmocka_unit_test(test_unix_listen_addresses_mix_with_tcp),
        cmocka_unit_test(test_bad_unix_listen_values),
        cmocka_unit_test(test_service_needs_protocol_and_listen),
        cmocka_unit_test(test_bad_protocol_name),
        cmocka_unit_test(test_duplicates),
        cmocka_unit_test(test_syntax_errors_are_all_reported),
        cmocka_unit_test(test_missing_key_name),
        cmocka_unit_test(test_long_line_is_an_error_not_a_split),
        cmocka_unit_test(test_nul_byte_is_an_error),
        cmocka_unit_test(test_errors_in_every_part_are_collected),
        cmocka_unit_test(test_missing_file_names_the_file),
        cmocka_unit_test(test_directory_is_not_a_config),
        cmocka_unit_test(test_unreadable_file_names_the_file),
        cmocka_unit_test(test_file_is_read_with_lines),
        cmocka_unit_test(test_addr_string),
        cmocka_unit_test(test_wildcard_overlap_names_both_lines),
        cmocka_unit_test(test_unknown_key_suggests_the_closest),
        cmocka_unit_test(test_udp_listen_addresses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
