/* SPDX-License-Identifier: MIT */
/* test_log.c: weft/log.h: level filter, discarding, truncation, formatting. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <weft/log.h>

struct sink {
    int calls;
    int level;
    void *arg;
    size_t len;
    char msg[2048];
};

static struct sink sink;

static void
collect(int level, const char *msg, void *arg)
{
    sink.calls++;
    sink.level = level;
    sink.arg = arg;
    sink.len = strlen(msg);
    strncpy(sink.msg, msg, sizeof(sink.msg) - 1);
}

static int
reset(void **state)
{
    (void)state;
    memset(&sink, 0, sizeof(sink));
    weft_log_set_handler(NULL, NULL, WEFT_LOG_INFO);
    return 0;
}

static void
test_no_handler_discards_everything(void **state)
{
    (void)state;
    for (int l = WEFT_LOG_ERR; l <= WEFT_LOG_DEBUG; l++)
        assert_false(weft_log_enabled(l));
    weft_log(WEFT_LOG_ERR, "dropped %d", 1);       /* must not crash */

    weft_log_set_handler(collect, NULL, WEFT_LOG_DEBUG);
    weft_log(WEFT_LOG_ERR, "kept");
    assert_int_equal(sink.calls, 1);
    weft_log_set_handler(NULL, NULL, WEFT_LOG_DEBUG);  /* NULL with any level: discard */
    assert_false(weft_log_enabled(WEFT_LOG_ERR));
    weft_log(WEFT_LOG_ERR, "dropped");
    assert_int_equal(sink.calls, 1);
}

static void
test_levels_above_the_maximum_are_filtered(void **state)
{
    static int cookie;

    (void)state;
    weft_log_set_handler(collect, &cookie, WEFT_LOG_WARNING);
    assert_true(weft_log_enabled(WEFT_LOG_ERR));
    assert_true(weft_log_enabled(WEFT_LOG_WARNING));
    assert_false(weft_log_enabled(WEFT_LOG_NOTICE));
    assert_false(weft_log_enabled(WEFT_LOG_DEBUG));

    weft_log(WEFT_LOG_INFO, "too chatty");
    weft_log(WEFT_LOG_DEBUG, "too chatty");
    assert_int_equal(sink.calls, 0);
    weft_log(WEFT_LOG_WARNING, "disk %d%% full", 91);
    assert_int_equal(sink.calls, 1);
    assert_int_equal(sink.level, WEFT_LOG_WARNING);
    assert_ptr_equal(sink.arg, &cookie);
    assert_string_equal(sink.msg, "disk 91% full");
    weft_log(WEFT_LOG_ERR, "%s:%d", "conf", 7);
    assert_int_equal(sink.calls, 2);
    assert_string_equal(sink.msg, "conf:7");

    weft_log_set_handler(collect, NULL, WEFT_LOG_DEBUG);
    weft_log(WEFT_LOG_DEBUG, "now visible");
    assert_int_equal(sink.calls, 3);
    assert_int_equal(sink.level, WEFT_LOG_DEBUG);
}

static void
logv_wrapper(int level, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    weft_logv(level, fmt, ap);
    va_end(ap);
}

static void
test_logv_formats_like_log(void **state)
{
    (void)state;
    weft_log_set_handler(collect, NULL, WEFT_LOG_INFO);
    logv_wrapper(WEFT_LOG_NOTICE, "%s=%u", "workers", 4u);
    assert_int_equal(sink.calls, 1);
    assert_string_equal(sink.msg, "workers=4");
    logv_wrapper(WEFT_LOG_DEBUG, "filtered");
    assert_int_equal(sink.calls, 1);
}

static void
test_long_messages_are_truncated_not_overflowing(void **state)
{
    size_t n = 5000;
    char *big = malloc(n + 1);

    (void)state;
    assert_non_null(big);
    memset(big, 'x', n);
    big[0] = 'S';
    big[n] = '\0';
    weft_log_set_handler(collect, NULL, WEFT_LOG_INFO);
    weft_log(WEFT_LOG_ERR, "%s", big);
    assert_int_equal(sink.calls, 1);
    assert_true(sink.len >= 1000);              /* "1 KiB": the start is kept */
    assert_true(sink.len < 1024);               /* and nothing past the buffer */
    assert_int_equal(sink.msg[0], 'S');
    assert_int_equal(sink.msg[sink.len - 1], 'x');
    free(big);
}

static void
test_level_names(void **state)
{
    (void)state;
    assert_string_equal(weft_log_level_name(WEFT_LOG_ERR), "error");
    assert_string_equal(weft_log_level_name(WEFT_LOG_WARNING), "warning");
    assert_string_equal(weft_log_level_name(WEFT_LOG_NOTICE), "notice");
    assert_string_equal(weft_log_level_name(WEFT_LOG_INFO), "info");
    assert_string_equal(weft_log_level_name(WEFT_LOG_DEBUG), "debug");
    assert_string_equal(weft_log_level_name(0), "error");      /* emerg..crit */
    assert_string_equal(weft_log_level_name(42), "debug");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_no_handler_discards_everything, reset, reset),
        cmocka_unit_test_setup_teardown(test_levels_above_the_maximum_are_filtered, reset, reset),
        cmocka_unit_test_setup_teardown(test_logv_formats_like_log, reset, reset),
        cmocka_unit_test_setup_teardown(test_long_messages_are_truncated_not_overflowing,
                                        reset, reset),
        cmocka_unit_test_setup_teardown(test_level_names, reset, reset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
