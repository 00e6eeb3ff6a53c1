/* rt_file: bounded reads, the atomic private write (issue 7, defect 12: the
 * temp file must not follow a planted symlink), and the ssh-style refusal of
 * key files and directories that others can read. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "px_err.h"
#include "rt_file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[] = "/tmp/rt-file-test-XXXXXX";

static char *at(const char *name)
{
    static char p[4][256];
    static int i;
    i = (i + 1) % 4;
    snprintf(p[i], sizeof(p[i]), "%s/%s", dir, name);
    return p[i];
}

static void put(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    assert_int_equal(chmod(path, mode), 0);
}

static char *slurp(const char *path)
{
    return rt_file_read(path, 1 << 20, NULL, NULL);
}

/* Names in dir other than "." and "..". */
static int entries(const char *d)
{
    DIR *dp = opendir(d);
    assert_non_null(dp);
    int n = 0;
    for (struct dirent *e; (e = readdir(dp));)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            n++;
    closedir(dp);
    return n;
}

static int setup(void **state)
{
    (void)state;
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_read_bounded(void **state)
{
    (void)state;
    put(at("r.txt"), "hello", 0600);
    size_t n = 0;
    int err = 0;
    char *s = rt_file_read(at("r.txt"), 100, &n, &err);
    assert_non_null(s);
    assert_string_equal(s, "hello");
    assert_int_equal(n, 5);
    free(s);
    assert_null(rt_file_read(at("r.txt"), 4, NULL, &err));
    assert_int_equal(err, EFBIG);
    assert_null(rt_file_read(at("missing"), 100, NULL, &err));
    assert_int_equal(err, ENOENT);
    /* Larger than one read chunk. */
    size_t big = 200000;
    char *b = malloc(big + 1);
    assert_non_null(b);
    memset(b, 'x', big);
    b[big] = '\0';
    put(at("big.txt"), b, 0600);
    s = rt_file_read(at("big.txt"), big, &n, &err);
    assert_non_null(s);
    assert_int_equal(n, big);
    assert_memory_equal(s, b, big);
    free(s);
    free(b);
}

static void test_write_private_mode_and_content(void **state)
{
    (void)state;
    mode_t old = umask(0); /* the file is 0600 whatever the umask */
    assert_int_equal(rt_file_write_private(at("w.pem"), "first\n"), 0);
    umask(old);
    struct stat st;
    assert_int_equal(stat(at("w.pem"), &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    char *s = slurp(at("w.pem"));
    assert_string_equal(s, "first\n");
    free(s);
    /* Replaced atomically; no temp file left behind. */
    int before = entries(dir);
    assert_int_equal(rt_file_write_private(at("w.pem"), "second\n"), 0);
    s = slurp(at("w.pem"));
    assert_string_equal(s, "second\n");
    free(s);
    assert_int_equal(entries(dir), before);
    unlink(at("w.pem"));
}

static void test_defect12_planted_symlink_not_followed(void **state)
{
    (void)state;
    /* The old code wrote through "<path>.tmp" with O_CREAT|O_TRUNC: a
     * symlink planted there sent the key to the attacker's target. */
    put(at("victim"), "victim content\n", 0644);
    assert_int_equal(symlink(at("victim"), at("key.pem.tmp")), 0);
    assert_int_equal(rt_file_write_private(at("key.pem"), "SECRET KEY\n"), 0);
    char *v = slurp(at("victim"));
    assert_string_equal(v, "victim content\n");
    free(v);
    struct stat st;
    assert_int_equal(lstat(at("key.pem"), &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0600);
    char *k = slurp(at("key.pem"));
    assert_string_equal(k, "SECRET KEY\n");
    free(k);
    /* The planted link is left alone, not replaced by a key-bearing file. */
    assert_int_equal(lstat(at("key.pem.tmp"), &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    unlink(at("key.pem.tmp"));
    unlink(at("key.pem"));
    unlink(at("victim"));
}

static void test_write_private_replaces_symlink_target_name(void **state)
{
    (void)state;
    /* A symlink at the destination is replaced by rename, not written through. */
    put(at("victim2"), "victim\n", 0644);
    assert_int_equal(symlink(at("victim2"), at("cert.pem")), 0);
    assert_int_equal(rt_file_write_private(at("cert.pem"), "cert\n"), 0);
    char *v = slurp(at("victim2"));
    assert_string_equal(v, "victim\n");
    free(v);
    struct stat st;
    assert_int_equal(lstat(at("cert.pem"), &st), 0);
    assert_true(S_ISREG(st.st_mode));
    unlink(at("cert.pem"));
    unlink(at("victim2"));
}

static void test_write_private_errors(void **state)
{
    (void)state;
    errno = 0;
    assert_int_equal(rt_file_write_private(at("no/such/dir/key.pem"), "x"), PX_ERR_IO);
    assert_int_equal(errno, ENOENT);
    /* A relative path (directory ".") is fine. */
    char cwd[512];
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    assert_int_equal(chdir(dir), 0);
    assert_int_equal(rt_file_write_private("rel.pem", "rel\n"), 0);
    char *s = slurp("rel.pem");
    assert_string_equal(s, "rel\n");
    free(s);
    unlink("rel.pem");
    assert_int_equal(chdir(cwd), 0);
}

static void read_private_refused(const char *path, const char *a, const char *b)
{
    char why[512] = "";
    char *out = (char *)1;
    int rc = rt_file_read_private(path, 1 << 20, &out, NULL, why, sizeof(why));
    if (rc != PX_ERR_DENIED || !strstr(why, a) || (b && !strstr(why, b)))
        print_error("read_private(%s) = %d: %s\n", path, rc, why);
    assert_int_equal(rc, PX_ERR_DENIED);
    assert_null(out);
    assert_non_null(strstr(why, a));
    if (b)
        assert_non_null(strstr(why, b));
}

static void test_defect12_key_file_checks(void **state)
{
    (void)state;
    char why[512] = "", *out = NULL, want[600];
    size_t n = 0;
    put(at("k.pem"), "KEY\n", 0600);
    assert_int_equal(rt_file_read_private(at("k.pem"), 100, &out, &n, why, sizeof(why)), 0);
    assert_string_equal(out, "KEY\n");
    assert_int_equal(n, 4);
    free(out);
    /* Readable by others: refused, naming the fix. */
    assert_int_equal(chmod(at("k.pem"), 0644), 0);
    snprintf(want, sizeof(want), "key file %s is readable by others (mode 0644); run: chmod 600 %s",
             at("k.pem"), at("k.pem"));
    read_private_refused(at("k.pem"), want, NULL);
    assert_int_equal(chmod(at("k.pem"), 0660), 0);
    read_private_refused(at("k.pem"), "is writable by others (mode 0660)", "chmod 600");
    assert_int_equal(chmod(at("k.pem"), 0640), 0);
    read_private_refused(at("k.pem"), "is readable by others (mode 0640)", NULL);
    assert_int_equal(chmod(at("k.pem"), 0600), 0);
    /* A symlink is not followed. */
    assert_int_equal(symlink(at("k.pem"), at("link.pem")), 0);
    read_private_refused(at("link.pem"), "is a symbolic link", NULL);
    /* A FIFO does not hang the reader. */
    assert_int_equal(mkfifo(at("fifo.pem"), 0600), 0);
    read_private_refused(at("fifo.pem"), "is not a regular file", NULL);
    /* Missing: the caller creates it. */
    out = (char *)1;
    assert_int_equal(rt_file_read_private(at("none.pem"), 100, &out, NULL, why, sizeof(why)),
                     PX_ERR_NOT_FOUND);
    assert_null(out);
    /* Too large. */
    assert_int_equal(rt_file_read_private(at("k.pem"), 2, &out, NULL, why, sizeof(why)),
                     PX_ERR_TOO_LARGE);
    assert_null(out);
    if (geteuid() == 0) {
        assert_int_equal(chown(at("k.pem"), 65534, 65534), 0);
        read_private_refused(at("k.pem"), "is owned by uid 65534, not by this user", NULL);
    }
    unlink(at("k.pem"));
    unlink(at("link.pem"));
    unlink(at("fifo.pem"));
}

static void dir_refused(const char *d, mode_t mode, const char *a)
{
    char why[600] = "";
    assert_int_equal(chmod(d, mode), 0);
    int rc = rt_file_check_private_dir(d, "state directory", why, sizeof(why));
    if (rc != PX_ERR_DENIED || !strstr(why, a))
        print_error("check_private_dir(%s, %04o) = %d: %s\n", d, (unsigned)mode, rc, why);
    assert_int_equal(rc, PX_ERR_DENIED);
    assert_non_null(strstr(why, a));
}

static void test_defect12_dir_checks(void **state)
{
    (void)state;
    char why[600] = "", want[700];
    const char *d = at("state");
    assert_int_equal(mkdir(d, 0700), 0);
    assert_int_equal(chmod(d, 0700), 0);
    assert_int_equal(rt_file_check_private_dir(d, "state directory", why, sizeof(why)), 0);
    snprintf(want, sizeof(want),
             "state directory %s is readable by others (mode 0755); run: chmod 700 %s", d, d);
    dir_refused(d, 0755, want);
    dir_refused(d, 0750, "is readable by others (mode 0750)");
    dir_refused(d, 0777, "is writable by others (mode 0777)");
    dir_refused(d, 0730, "is writable by others (mode 0730)");
    dir_refused(d, 0711, "is accessible by others (mode 0711)");
    assert_int_equal(chmod(d, 0700), 0);
    if (geteuid() == 0) {
        assert_int_equal(chown(d, 65534, 65534), 0);
        dir_refused(d, 0700, "is owned by uid 65534, not by this user (uid 0)");
        assert_int_equal(chown(d, 0, 0), 0);
    }
    /* Not a directory, or missing: an I/O error saying so. */
    put(at("plain"), "x", 0600);
    assert_int_equal(rt_file_check_private_dir(at("plain"), "data directory", why, sizeof(why)),
                     PX_ERR_IO);
    assert_non_null(strstr(why, "is not a directory"));
    assert_int_equal(rt_file_check_private_dir(at("nope"), "data directory", why, sizeof(why)),
                     PX_ERR_IO);
    assert_non_null(strstr(why, "No such file"));
    unlink(at("plain"));
    rmdir(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_bounded),
        cmocka_unit_test(test_write_private_mode_and_content),
        cmocka_unit_test(test_defect12_planted_symlink_not_followed),
        cmocka_unit_test(test_write_private_replaces_symlink_target_name),
        cmocka_unit_test(test_write_private_errors),
        cmocka_unit_test(test_defect12_key_file_checks),
        cmocka_unit_test(test_defect12_dir_checks),
    };
    return cmocka_run_group_tests_name("rt_file", tests, setup, teardown);
}
