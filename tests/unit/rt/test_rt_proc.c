/* rt_proc: the process set-up both mains run first. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "rt_proc.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

static void test_init(void **state)
{
    (void)state;
    struct rlimit before;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &before), 0);
    umask(022);
    signal(SIGPIPE, SIG_DFL);
    assert_int_equal(rt_proc_init("test_rt_proc"), 0);
    /* Files it creates are private. */
    mode_t m = umask(077);
    assert_int_equal(m, 077);
    /* As many descriptors as the hard limit allows. */
    struct rlimit after;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &after), 0);
    assert_true(after.rlim_cur == before.rlim_max);
    /* A write to a closed pipe is an error, not the end of the process. */
    struct sigaction sa;
    assert_int_equal(sigaction(SIGPIPE, NULL, &sa), 0);
    assert_ptr_equal(sa.sa_handler, SIG_IGN);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    close(fds[0]);
    assert_int_equal(write(fds[1], "x", 1), -1);
    close(fds[1]);
    /* Running it again (a second command in one process) is harmless. */
    assert_int_equal(rt_proc_init("test_rt_proc"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init),
    };
    return cmocka_run_group_tests_name("rt_proc", tests, NULL, NULL);
}
