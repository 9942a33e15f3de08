/* SPDX-License-Identifier: MIT */
/* test_error.c: weft/error.h: names and messages of errno values and weft's own codes. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <string.h>

#include <weft/error.h>

static void
test_zero_is_success(void **state)
{
    (void)state;
    assert_string_equal(weft_strerror(0), "success");
    assert_string_equal(weft_err_name(0), "OK");
}

static void
test_errno_values_are_named_either_sign(void **state)
{
    static const struct { int code; const char *name; } known[] = {
        { ECONNRESET, "ECONNRESET" }, { ETIMEDOUT, "ETIMEDOUT" }, { ECANCELED, "ECANCELED" },
        { ENOMEM, "ENOMEM" }, { EINVAL, "EINVAL" }, { EBUSY, "EBUSY" }, { EPIPE, "EPIPE" },
        { EMFILE, "EMFILE" }, { EAGAIN, "EAGAIN" },
    };

    (void)state;
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
        int c = known[i].code;

        assert_string_equal(weft_err_name(-c), known[i].name);
        assert_string_equal(weft_err_name(c), known[i].name);
        assert_string_equal(weft_strerror(-c), strerror(c));
        assert_string_equal(weft_strerror(c), weft_strerror(-c));
    }
    assert_string_equal(weft_strerror(-ECONNRESET), "Connection reset by peer");
}

static void
test_every_weft_code_has_a_distinct_name_and_message(void **state)
{
    (void)state;
    for (int c = WEFT_EINCOMPLETE; c < WEFT_ELAST_; c++) {
        const char *name = weft_err_name(-c), *msg = weft_strerror(-c);

        assert_non_null(name);
        assert_non_null(msg);
        assert_int_equal(strncmp(name, "WEFT_E", 6), 0);
        assert_string_not_equal(msg, "unknown error");
        assert_string_equal(weft_err_name(c), name);
        assert_string_equal(weft_strerror(c), msg);
        for (int d = WEFT_EINCOMPLETE; d < c; d++) {
            assert_string_not_equal(weft_err_name(-d), name);
            assert_string_not_equal(weft_strerror(-d), msg);
        }
    }
    assert_string_equal(weft_err_name(-WEFT_ELIMIT), "WEFT_ELIMIT");
    assert_string_equal(weft_err_name(-WEFT_EPROTO), "WEFT_EPROTO");
    assert_string_equal(weft_err_name(-WEFT_ESHUTDOWN), "WEFT_ESHUTDOWN");
    assert_string_equal(weft_strerror(-WEFT_EBROKEN), "barrier broken");
}

static void
test_unknown_codes_are_named_unknown(void **state)
{
    static const int unknown[] = { WEFT_ELAST_, 3999, 200, 100000, INT_MAX, INT_MIN,
                                   -INT_MAX };

    (void)state;
    for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
        assert_string_equal(weft_err_name(unknown[i]), "UNKNOWN");
        assert_string_equal(weft_strerror(unknown[i]), "unknown error");
    }
}

static void
test_strings_are_static(void **state)
{
    const char *a = weft_strerror(-200), *b;

    (void)state;
    b = weft_strerror(-3999);           /* must not overwrite a */
    assert_string_equal(a, "unknown error");
    assert_string_equal(b, "unknown error");
    a = weft_strerror(-EPIPE);
    (void)weft_strerror(-ENOENT);
    assert_string_equal(a, strerror(EPIPE));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_zero_is_success),
        cmocka_unit_test(test_errno_values_are_named_either_sign),
        cmocka_unit_test(test_every_weft_code_has_a_distinct_name_and_message),
        cmocka_unit_test(test_unknown_codes_are_named_unknown),
        cmocka_unit_test(test_strings_are_static),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
