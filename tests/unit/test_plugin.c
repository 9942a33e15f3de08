/* SPDX-License-Identifier: MIT */
/* test_plugin.c: weftd's plugin loader and service set-up: good and broken plugins, ports. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <weft/weft.h>

#include "config.h"
#include "paths.h"
#include "harness.h"
#include "plugin.h"
#include "services.h"

#ifndef WEFT_TEST_PLUGIN_DIR
#error "WEFT_TEST_PLUGIN_DIR must name the folder of the broken test plugins"
#endif

static const char *
echo_dir(void)
{
    const char *d = getenv("WEFT_PLUGIN_DIR");

    assert_non_null(d);
    return d;
}

static void
test_echo_plugin_loads(void **state)
{
    struct plugin *p = NULL;
    char err[512] = "";
    char path[1024];

    (void)state;
    assert_int_equal(plugin_open(echo_dir(), "echo", &p, err, sizeof(err)), 0);
    assert_non_null(p);
    assert_int_equal(p->rec->abi, WEFT_PLUGIN_ABI);
    assert_true(p->rec->size >= sizeof(struct weft_plugin));
    assert_string_equal(p->rec->name, "echo");
    assert_non_null(p->rec->protocol_new);
    snprintf(path, sizeof(path), "%s/echo.so", echo_dir());
    assert_string_equal(p->path, path);
    plugin_close(p);
}

/* Load name from the broken plugins' folder; expect rc and err to contain each needle. */
static void
expect_refused(const char *dir, const char *name, int rc, const char *a, const char *b)
{
    struct plugin *p = (struct plugin *)1;
    char err[512] = "";
    int got = plugin_open(dir, name, &p, err, sizeof(err));

    print_message("  %s: %s\n", name, err);
    assert_int_equal(got, rc);
    assert_null(p);
    assert_non_null(strstr(err, a));
    if (b != NULL)
        assert_non_null(strstr(err, b));
}

static void
test_other_abi_is_refused_naming_the_file(void **state)
{
    (void)state;
    expect_refused(WEFT_TEST_PLUGIN_DIR, "bad_abi", -WEFT_EABI,
                   WEFT_TEST_PLUGIN_DIR "/bad_abi.so: ", "built for plugin ABI 7, weftd speaks 1");
}

static void
test_missing_symbol_is_refused_naming_the_file(void **state)
{
    (void)state;
    expect_refused(WEFT_TEST_PLUGIN_DIR, "no_symbol", -WEFT_ECONFIG,
                   WEFT_TEST_PLUGIN_DIR "/no_symbol.so: ",
                   "not a weft plugin (no weft_plugin symbol)");
}

static void
test_wrong_name_is_refused(void **state)
{
    (void)state;
    expect_refused(WEFT_TEST_PLUGIN_DIR, "wrong_name", -WEFT_ECONFIG,
                   WEFT_TEST_PLUGIN_DIR "/wrong_name.so: ",
                   "calls itself \"something_else\", expected \"wrong_name\"");
}

static void
test_short_record_is_refused(void **state)
{
    (void)state;
    expect_refused(WEFT_TEST_PLUGIN_DIR, "small_record", -WEFT_EABI,
                   WEFT_TEST_PLUGIN_DIR "/small_record.so: ", "record too small");
}

static void
test_text_file_named_so_is_refused(void **state)
{
    char dir[] = "/tmp/weft-plugins-XXXXXX", path[128];
    FILE *f;

    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/x.so", dir);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("this is not an ELF file\n", f);
    fclose(f);
    expect_refused(dir, "x", -WEFT_ECONFIG, path, NULL);
    unlink(path);
    rmdir(dir);
}

static void
test_missing_plugin_is_unknown_protocol(void **state)
{
    (void)state;
    expect_refused(WEFT_TEST_PLUGIN_DIR, "nonesuch", -ENOENT, "unknown protocol \"nonesuch\"",
                   WEFT_TEST_PLUGIN_DIR "/nonesuch.so");
}

static void
test_path_in_name_is_refused(void **state)
{
    (void)state;
    expect_refused(WEFT_TEST_PLUGIN_DIR, "../echo", -EINVAL, "bad protocol name", NULL);
}

/* The search path: the first directory holding <name>.so wins, missing ones are skipped. */
static void
test_search_path_first_dir_with_the_plugin_wins(void **state)
{
    char dir[] = "/tmp/weft-plugins-XXXXXX", link[128], target[1024], path[2048];
    struct plugin *p = NULL;
    char err[512] = "";

    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(link, sizeof(link), "%s/echo.so", dir);
    snprintf(target, sizeof(target), "%s/echo.so", echo_dir());
    assert_int_equal(symlink(target, link), 0);
    snprintf(path, sizeof(path), "/nonexistent-weft:%s:%s", dir, echo_dir());
    assert_int_equal(plugin_open(path, "echo", &p, err, sizeof(err)), 0);
    assert_string_equal(p->path, link);
    plugin_close(p);
    /* Not in the first directories: found in the last. */
    snprintf(path, sizeof(path), "/nonexistent-weft::%s:%s", WEFT_TEST_PLUGIN_DIR, echo_dir());
    assert_int_equal(plugin_open(path, "echo", &p, err, sizeof(err)), 0);
    assert_string_equal(p->path, target);
    plugin_close(p);
    unlink(link);
    rmdir(dir);
}

/* A broken plugin first in the path is an error, not a reason to look further. */
static void
test_search_path_broken_plugin_first_is_an_error(void **state)
{
    char path[1024];

    (void)state;
    snprintf(path, sizeof(path), "%s:%s", WEFT_TEST_PLUGIN_DIR, echo_dir());
    expect_refused(path, "bad_abi", -WEFT_EABI, WEFT_TEST_PLUGIN_DIR "/bad_abi.so: ", NULL);
}

static void
test_unknown_protocol_lists_every_dir_searched(void **state)
{
    (void)state;
    expect_refused("/weft-a:/weft-b/c", "nonesuch", -ENOENT,
                   "unknown protocol \"nonesuch\" (no /weft-a/nonesuch.so, "
                   "/weft-b/c/nonesuch.so)", NULL);
}

static void
test_prefix_of_an_installed_executable(void **state)
{
    char out[64];

    (void)state;
    assert_int_equal(paths_prefix_of("/tmp/p/sbin/weftd", "sbin", out, sizeof(out)), 0);
    assert_string_equal(out, "/tmp/p");
    assert_int_equal(paths_prefix_of("/usr/sbin/weftd", "sbin", out, sizeof(out)), 0);
    assert_string_equal(out, "/usr");
    assert_int_equal(paths_prefix_of("/sbin/weftd", "sbin", out, sizeof(out)), 0);
    assert_string_equal(out, "/");
    assert_int_equal(paths_prefix_of("/opt/w/x/bin/weftd", "x/bin/", out, sizeof(out)), 0);
    assert_string_equal(out, "/opt/w");
    /* Not in <prefix>/<sbindir>: the configured prefix is used. */
    assert_int_equal(paths_prefix_of("/b/daemon/weftd", "sbin", out, sizeof(out)), -1);
    assert_int_equal(paths_prefix_of("/b/xsbin/weftd", "sbin", out, sizeof(out)), -1);
    assert_int_equal(paths_prefix_of("/usr/sbin/weftd", "/usr/sbin", out, sizeof(out)), -1);
    assert_int_equal(paths_prefix_of("/a/very/long/prefix/sbin/weftd", "sbin", out, 8), -1);
    assert_int_equal(paths_installed("/etc/weft/weftd.conf", out, sizeof(out)), 0);
    assert_string_equal(out, "/etc/weft/weftd.conf");
}

static void
test_default_dir_is_the_build_tree_from_the_build_tree(void **state)
{
    (void)state;
    /* This test runs from the build tree, so the built plugins are the default. */
    assert_string_equal(plugin_default_dir(), echo_dir());
}

/* The sockets services_prepare binds; freed after each test's services. */
static struct listen_pool test_pool;

/* Load text as a config and prepare its services with plugins from dir. */
static struct config *
prepare(const char *text, const char *dir, struct services *ss, int *rc)
{
    struct config *c = NULL;

    config_load_mem("t.conf", text, strlen(text), &c);
    assert_non_null(c);
    *rc = services_prepare(ss, c, dir, &test_pool);
    for (size_t i = 0; i < c->nerrors; i++)
        print_message("  error: %s\n", c->errors[i].msg);
    return c;
}

static bool
has_error(const struct config *c, const char *needle)
{
    for (size_t i = 0; i < c->nerrors; i++)
        if (strstr(c->errors[i].msg, needle) != NULL)
            return true;
    return false;
}

static void
test_good_service_is_configured_and_bound(void **state)
{
    struct services ss;
    char text[256];
    uint16_t port = harness_port();
    struct config *c;
    int rc;

    (void)state;
    snprintf(text, sizeof(text), "[echo]\nprotocol = echo\nlisten = 127.0.0.1:%u\n",
             (unsigned)port);
    c = prepare(text, echo_dir(), &ss, &rc);
    assert_int_equal(rc, 0);
    assert_int_equal(ss.count, 1);
    assert_non_null(ss.list[0].plugin);
    assert_true(ss.list[0].fds[0] >= 0);
    /* Bound and listening: a connection is accepted by the kernel already. */
    {
        struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port) };
        int fd = socket(AF_INET, SOCK_STREAM, 0);

        sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        assert_true(fd >= 0);
        assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
        close(fd);
    }
    services_free(&ss);
    listen_pool_free(&test_pool);
    config_free(c);
}

static void
test_plugin_rejects_unknown_key_with_line(void **state)
{
    struct services ss;
    struct config *c;
    int rc;

    (void)state;
    c = prepare("[echo]\nprotocol = echo\nlisten = 127.0.0.1:1\ncolor = blue\n", echo_dir(),
                &ss, &rc);
    assert_int_equal(rc, -WEFT_ECONFIG);
    assert_true(has_error(c, "t.conf:4: [echo] color: unknown key for protocol echo"));
    services_free(&ss);
    listen_pool_free(&test_pool);
    config_free(c);
}

static void
test_unknown_protocol_names_line_and_key(void **state)
{
    struct services ss;
    struct config *c;
    int rc;

    (void)state;
    c = prepare("[x]\nlisten = 127.0.0.1:1\nprotocol = gopher\n", echo_dir(), &ss, &rc);
    assert_int_equal(rc, -WEFT_ECONFIG);
    assert_true(has_error(c, "t.conf:3: [x] protocol: unknown protocol \"gopher\""));
    services_free(&ss);
    listen_pool_free(&test_pool);
    config_free(c);
}

/*
 * The search path services_prepare builds: -p, then $WEFT_PLUGIN_DIR, then plugin_dir,
 * then the built-in directory, which -p does not replace.
 */
static void
test_search_path_order_and_built_in_last(void **state)
{
    struct services ss;
    struct config *c;
    char text[512], want[2048];
    char *env = strdup(echo_dir());
    int rc;

    (void)state;
    assert_non_null(env);
    setenv("WEFT_PLUGIN_DIR", "/weft-env1:/weft-env2", 1);
    snprintf(text, sizeof(text),
             "[weftd]\nplugin_dir = /weft-conf, rel\n[x]\nprotocol = gopher\n"
             "listen = 127.0.0.1:1\n[e]\nprotocol = echo\nlisten = 127.0.0.1:%u\n",
             (unsigned)harness_port());
    c = prepare(text, "/weft-p1:" WEFT_TEST_PLUGIN_DIR, &ss, &rc);
    setenv("WEFT_PLUGIN_DIR", env, 1);
    free(env);
    assert_int_equal(rc, -WEFT_ECONFIG);
    snprintf(want, sizeof(want),
             "[x] protocol: unknown protocol \"gopher\" (no /weft-p1/gopher.so, "
             WEFT_TEST_PLUGIN_DIR "/gopher.so, /weft-env1/gopher.so, /weft-env2/gopher.so, "
             "/weft-conf/gopher.so, rel/gopher.so, %s/gopher.so)", plugin_default_dir());
    assert_true(has_error(c, want));
    /* echo is in none of those but the built-in directory: found there. */
    assert_int_equal(c->nerrors, 1);
    assert_non_null(ss.list[1].plugin);
    services_free(&ss);
    listen_pool_free(&test_pool);
    config_free(c);
}

static void
test_bad_plugin_in_config_names_line_and_file(void **state)
{
    struct services ss;
    struct config *c;
    int rc;

    (void)state;
    c = prepare("[x]\nprotocol = bad_abi\nlisten = 127.0.0.1:1\n", WEFT_TEST_PLUGIN_DIR, &ss,
                &rc);
    assert_int_equal(rc, -WEFT_ECONFIG);
    assert_true(has_error(c, "t.conf:2: [x] protocol: " WEFT_TEST_PLUGIN_DIR "/bad_abi.so: "
                             "built for plugin ABI 7"));
    services_free(&ss);
    listen_pool_free(&test_pool);
    config_free(c);
}

static void
test_port_in_use_names_the_line(void **state)
{
    struct services ss;
    struct config *c;
    char text[256], want[128];
    uint16_t port;
    int busy = harness_listen(&port), rc;

    (void)state;
    assert_true(busy >= 0);
    snprintf(text, sizeof(text), "[echo]\nprotocol = echo\n\nlisten = 127.0.0.1:%u\n",
             (unsigned)port);
    c = prepare(text, echo_dir(), &ss, &rc);
    assert_int_equal(rc, -WEFT_ECONFIG);
    snprintf(want, sizeof(want), "t.conf:4: [echo] listen: 127.0.0.1:%u: port in use",
             (unsigned)port);
    assert_true(has_error(c, want));
    services_free(&ss);
    listen_pool_free(&test_pool);
    config_free(c);
    close(busy);
}

static void
test_no_service_is_an_error(void **state)
{
    struct services ss;
    struct config *c;
    int rc;

    (void)state;
    c = prepare("[weftd]\nlog_level = info\n", echo_dir(), &ss, &rc);
    assert_int_equal(rc, -WEFT_ECONFIG);
    assert_true(has_error(c, "t.conf: no service defined"));
    services_free(&ss);
    listen_pool_free(&test_pool);
    config_free(c);
}

static void
test_parse_errors_and_plugin_errors_together(void **state)
{
    struct services ss;
    struct config *c;
    int rc;

    (void)state;
    c = prepare("[weftd]\nverbose = 1\n[echo]\nprotocol = echo\nlisten = 127.0.0.1:0\n"
                "shout = yes\n", echo_dir(), &ss, &rc);
    assert_int_equal(rc, -WEFT_ECONFIG);
    assert_int_equal(c->nerrors, 3);
    assert_true(has_error(c, "t.conf:2: [weftd] verbose: unknown key"));
    assert_true(has_error(c, "t.conf:5: [echo] listen: bad port"));
    assert_true(has_error(c, "t.conf:6: [echo] shout: unknown key for protocol echo"));
    services_free(&ss);
    listen_pool_free(&test_pool);
    config_free(c);
}

/* udp: needs a plugin with datagram_new (echo has it, poem has not); the master binds it. */
static void
test_udp_listen_needs_a_datagram_plugin(void **state)
{
    struct services ss;
    char text[256];
    uint16_t port = harness_port();
    struct config *c;
    int rc, type = 0;
    socklen_t tl = sizeof(type);

    (void)state;
    snprintf(text, sizeof(text), "[echo]\nprotocol = echo\nlisten = 127.0.0.1:%u, "
             "udp:127.0.0.1:%u\n", (unsigned)port, (unsigned)port);
    c = prepare(text, echo_dir(), &ss, &rc);
    assert_int_equal(rc, 0);
    assert_int_equal(ss.list[0].nfds, 2);
    assert_int_equal(getsockopt(ss.list[0].fds[1], SOL_SOCKET, SO_TYPE, &type, &tl), 0);
    assert_int_equal(type, SOCK_DGRAM);
    services_free(&ss);
    listen_pool_free(&test_pool);
    config_free(c);

    snprintf(text, sizeof(text), "[p]\nprotocol = poem\nlisten = udp:127.0.0.1:%u\n",
             (unsigned)port);
    c = prepare(text, echo_dir(), &ss, &rc);
    assert_int_equal(rc, -WEFT_ECONFIG);
    assert_true(has_error(c, "t.conf:3: [p] listen: udp:127.0.0.1:"));
    assert_true(has_error(c, "protocol poem does not speak UDP"));
    services_free(&ss);
    listen_pool_free(&test_pool);
    config_free(c);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_echo_plugin_loads),
        cmocka_unit_test(test_search_path_first_dir_with_the_plugin_wins),
        cmocka_unit_test(test_search_path_broken_plugin_first_is_an_error),
        cmocka_unit_test(test_unknown_protocol_lists_every_dir_searched),
        cmocka_unit_test(test_prefix_of_an_installed_executable),
        cmocka_unit_test(test_search_path_order_and_built_in_last),
        cmocka_unit_test(test_other_abi_is_refused_naming_the_file),
        cmocka_unit_test(test_missing_symbol_is_refused_naming_the_file),
        cmocka_unit_test(test_wrong_name_is_refused),
        cmocka_unit_test(test_short_record_is_refused),
        cmocka_unit_test(test_text_file_named_so_is_refused),
        cmocka_unit_test(test_missing_plugin_is_unknown_protocol),
        cmocka_unit_test(test_path_in_name_is_refused),
        cmocka_unit_test(test_default_dir_is_the_build_tree_from_the_build_tree),
        cmocka_unit_test(test_good_service_is_configured_and_bound),
        cmocka_unit_test(test_plugin_rejects_unknown_key_with_line),
        cmocka_unit_test(test_unknown_protocol_names_line_and_key),
        cmocka_unit_test(test_bad_plugin_in_config_names_line_and_file),
        cmocka_unit_test(test_port_in_use_names_the_line),
        cmocka_unit_test(test_no_service_is_an_error),
        cmocka_unit_test(test_parse_errors_and_plugin_errors_together),
        cmocka_unit_test(test_udp_listen_needs_a_datagram_plugin),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
