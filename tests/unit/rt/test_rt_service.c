/* rt_service: the systemd unit both daemons install (hardening, the token as
 * a credential, words quoted so ExecStart passes them verbatim), the checks
 * on the files it names, and install/uninstall against a stand-in systemctl
 * that records what it was asked. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "px_buf.h"
#include "px_err.h"
#include "rt_service.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[] = "/tmp/rt-service-test-XXXXXX";

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

/* The whole of path, or "" when missing (static buffer). */
static const char *slurp(const char *path)
{
    static char buf[8192];
    buf[0] = '\0';
    FILE *f = fopen(path, "r");
    if (!f)
        return buf;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static int setup(void **state)
{
    (void)state;
    assert_non_null(mkdtemp(dir));
    /* The stand-in systemctl: records its arguments, fails on "fail". */
    char script[512];
    snprintf(script, sizeof(script),
             "#!/bin/sh\necho \"$*\" >> %s/systemctl.log\n[ \"$1\" != fail ] || exit 3\n", dir);
    put(at("systemctl"), script, 0755);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd);
}

static const char *quoted(const char *word)
{
    static char out[256];
    struct px_buf b;
    px_buf_init(&b);
    int rc = rt_service_quote(&b, word);
    snprintf(out, sizeof(out), "%s", rc == 0 ? px_buf_cstr(&b) : "(refused)");
    px_buf_cleanup(&b);
    return out;
}

static void test_quote(void **state)
{
    (void)state;
    assert_string_equal(quoted("--hostname"), "--hostname");
    assert_string_equal(quoted("/etc/connector/config.json"), "/etc/connector/config.json");
    assert_string_equal(quoted("a b"), "\"a b\"");
    /* No specifier or variable of the operator's is expanded by systemd. */
    assert_string_equal(quoted("100%d"), "\"100%%d\"");
    assert_string_equal(quoted("$HOME"), "\"$$HOME\"");
    assert_string_equal(quoted("say \"hi\"\\"), "\"say \\\"hi\\\"\\\\\"");
    assert_string_equal(quoted("^/api/.*$"), "\"^/api/.*$$\"");
    assert_string_equal(quoted(""), "\"\"");
    assert_string_equal(quoted("a\nExecStartPre=/bin/evil"), "(refused)");
    assert_string_equal(quoted("tab\there"), "(refused)");
}

/* The unit text for s, or fails the test. */
static char *unit_of(const struct rt_service *s)
{
    struct px_buf b;
    char why[256];
    px_buf_init(&b);
    assert_int_equal(rt_service_unit(s, &b, why, sizeof(why)), 0);
    char *text = strdup(px_buf_cstr(&b));
    px_buf_cleanup(&b);
    return text;
}

static void test_unit_hardening(void **state)
{
    (void)state;
    const char *args[] = {"--config", "/etc/connector/my config.json", "--loglevel", "debug"};
    struct rt_service s = {.name = "connector",
                           .description = "Tunnel connector",
                           .writer = "connector service install",
                           .bin = "/usr/bin/connector",
                           .exec_fixed = "run --token-file %d/token",
                           .args = args,
                           .n_args = 4,
                           .token_file = "/etc/connector/token",
                           .reload_hup = 1,
                           .stop_timeout_s = 45};
    char *u = unit_of(&s);
    const char *head = "# Written by `connector service install`; `connector service "
                       "uninstall` removes it.\n[Unit]\n";
    assert_true(strncmp(u, head, strlen(head)) == 0);
    const char *lines[] = {
        "\nExecStart=/usr/bin/connector run --token-file %d/token --config "
        "\"/etc/connector/my config.json\" --loglevel debug\n",
        "\nExecReload=kill -HUP $MAINPID\n",
        "\nLoadCredential=token:/etc/connector/token\n",
        "\nDynamicUser=yes\n",
        "\nStateDirectory=connector\n",
        "\nStateDirectoryMode=0700\n",
        "\nProtectSystem=strict\n",
        "\nNoNewPrivileges=yes\n",
        "\nRestart=on-failure\n",
        "\nProtectHome=yes\n",
        "\nPrivateTmp=yes\n",
        "\nPrivateDevices=yes\n",
        "\nRestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK\n",
        "\nSystemCallFilter=@system-service\n",
        "\nCapabilityBoundingSet=\n",
        "\nAmbientCapabilities=\n",
        "\nTimeoutStopSec=45s\n",
        "\n[Install]\nWantedBy=multi-user.target\n",
    };
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
        if (!strstr(u, lines[i]))
            fail_msg("no %s in\n%s", lines[i], u);
    assert_null(strstr(u, "CAP_NET_BIND_SERVICE"));
    assert_null(strstr(u, "EnvironmentFile"));
    assert_null(strstr(u, "Documentation="));
    free(u);

    /* A listener below 1024: that one capability, bounded and ambient. A
     * unit for a package: no writer line, options from an environment file. */
    struct rt_service e = {.name = "edge-sim",
                           .description = "Tunnel edge",
                           .bin = "/usr/bin/edge-sim",
                           .exec_fixed = "serve --data-dir %S/edge-sim $EDGE_SIM_OPTS",
                           .env_file = "/etc/default/edge-sim",
                           .low_ports = 1};
    u = unit_of(&e);
    assert_true(strncmp(u, "[Unit]\n", 7) == 0);
    assert_non_null(strstr(u, "\nCapabilityBoundingSet=CAP_NET_BIND_SERVICE\n"
                              "AmbientCapabilities=CAP_NET_BIND_SERVICE\n"));
    assert_non_null(strstr(u, "\nEnvironmentFile=-/etc/default/edge-sim\n"));
    assert_non_null(
        strstr(u, "\nExecStart=/usr/bin/edge-sim serve --data-dir %S/edge-sim $EDGE_SIM_OPTS\n"));
    assert_null(strstr(u, "LoadCredential"));
    assert_null(strstr(u, "ExecReload"));
    free(u);
}

static void test_unit_refuses_control_characters(void **state)
{
    (void)state;
    struct px_buf b;
    char why[256] = "";
    const char *args[] = {"--hostname", "a.example\n[Service]\nUser=root"};
    struct rt_service s = {.name = "connector",
                           .description = "d",
                           .bin = "/usr/bin/connector",
                           .args = args,
                           .n_args = 2};
    px_buf_init(&b);
    assert_int_equal(rt_service_unit(&s, &b, why, sizeof(why)), PX_ERR_INVAL);
    assert_non_null(strstr(why, "argument 2"));
    px_buf_cleanup(&b);
    struct rt_service t = {.name = "connector",
                           .description = "d",
                           .bin = "/usr/bin/connector",
                           .token_file = "/etc/tok\nUser=root"};
    px_buf_init(&b);
    assert_int_equal(rt_service_unit(&t, &b, why, sizeof(why)), PX_ERR_INVAL);
    assert_non_null(strstr(why, "LoadCredential"));
    px_buf_cleanup(&b);
}

/* Review 12.1: `systemd-analyze verify` runs man on Documentation=man:,
 * and fails where the page is not installed: the line only when asked for
 * (where man finds the page), and the check asks man as verify does. */
static void test_review_12_1_man_page_only_when_found(void **state)
{
    (void)state;
    struct rt_service s = {
        .name = "connector", .description = "d", .bin = "/usr/bin/connector", .man_page = 1};
    char *u = unit_of(&s);
    assert_non_null(strstr(u, "\nDescription=d\nDocumentation=man:connector(1)\n"));
    free(u);
    s.man_page = 0;
    u = unit_of(&s);
    assert_null(strstr(u, "Documentation"));
    free(u);

    /* A stand-in man that knows only connector(1), and records its words. */
    char script[512];
    snprintf(script, sizeof(script),
             "#!/bin/sh\necho \"$*\" >> %s/man.log\necho /usr/share/man/man1/$3.1.gz\n"
             "[ \"$1 $2 $3\" = \"-w 1 connector\" ] || { echo \"No manual entry\" >&2; "
             "exit 16; }\n",
             dir);
    put(at("man"), script, 0755);
    unlink(at("man.log"));
    assert_int_equal(rt_service_man_page(at("man"), "connector"), 1);
    assert_int_equal(rt_service_man_page(at("man"), "edge-sim"), 0);
    assert_string_equal(slurp(at("man.log")), "-w 1 connector\n-w 1 edge-sim\n");
    /* No man at all (a minimal image): no page. */
    assert_int_equal(rt_service_man_page(at("no-such-man"), "connector"), 0);
    assert_int_equal(rt_service_man_page("no-such-man-program-here", "connector"), 0);
}

/* The unit for a token file and an environment file at path (either
 * refused: NULL, with why). */
static char *unit_with_paths(const char *token, const char *env, char *why, size_t whylen)
{
    struct rt_service s = {.name = "connector",
                           .description = "d",
                           .bin = "/usr/bin/connector",
                           .token_file = token,
                           .env_file = env};
    struct px_buf b;
    px_buf_init(&b);
    int rc = rt_service_unit(&s, &b, why, whylen);
    char *text = rc == 0 ? strdup(px_buf_cstr(&b)) : NULL;
    if (rc != 0)
        assert_int_equal(rc, PX_ERR_INVAL);
    px_buf_cleanup(&b);
    return text;
}

/* Review 12.7: systemd expands specifiers in LoadCredential= and
 * EnvironmentFile= paths, and quotes nothing there: each % doubled, and a
 * path it would read as another (whitespace, a backslash) refused. */
static void test_review_12_7_paths_escaped(void **state)
{
    (void)state;
    char why[256] = "";
    char *u = unit_with_paths("/etc/100%d/tok%%en", "/etc/opts%S", why, sizeof(why));
    assert_non_null(u);
    assert_non_null(strstr(u, "\nLoadCredential=token:/etc/100%%d/tok%%%%en\n"));
    assert_non_null(strstr(u, "\nEnvironmentFile=-/etc/opts%%S\n"));
    free(u);

    const struct {
        const char *token, *env, *key, *what;
    } refused[] = {
        {"/etc/my token", NULL, "LoadCredential=", "a space"},
        {"/etc/token ", NULL, "LoadCredential=", "a space"},
        {"/etc/tok\tx", NULL, "LoadCredential=", "a control character"},
        {"/etc/tok\nUser=root", NULL, "LoadCredential=", "a control character"},
        {"/etc/tok\\", NULL, "LoadCredential=", "a backslash"},
        {"etc/tok", NULL, "LoadCredential=", "must be absolute"},
        {NULL, "/etc/default/edge sim", "EnvironmentFile=", "a space"},
        {NULL, "/etc/default/x\\", "EnvironmentFile=", "a backslash"},
        {NULL, "default/edge-sim", "EnvironmentFile=", "must be absolute"},
    };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        why[0] = '\0';
        u = unit_with_paths(refused[i].token, refused[i].env, why, sizeof(why));
        if (u)
            fail_msg("case %zu written:\n%s", i, u);
        if (!strstr(why, refused[i].key) || !strstr(why, refused[i].what))
            fail_msg("case %zu: why is \"%s\"", i, why);
    }
}

static void test_check_secret(void **state)
{
    (void)state;
    char why[512];
    put(at("tok600"), "t", 0600);
    put(at("tok400"), "t", 0400);
    put(at("tok640"), "t", 0640);
    put(at("tok644"), "t", 0644);
    assert_int_equal(rt_service_check_secret(at("tok600"), "token file", why, sizeof(why)), 0);
    assert_int_equal(rt_service_check_secret(at("tok400"), "token file", why, sizeof(why)), 0);
    assert_int_equal(rt_service_check_secret(at("tok640"), "token file", why, sizeof(why)),
                     PX_ERR_DENIED);
    assert_non_null(strstr(why, "readable by others (mode 0640)"));
    assert_int_equal(rt_service_check_secret(at("tok644"), "token file", why, sizeof(why)),
                     PX_ERR_DENIED);
    assert_non_null(strstr(why, "mode 0600 or stricter; run: chmod 600 "));
    assert_int_equal(rt_service_check_secret(at("none"), "token file", why, sizeof(why)),
                     PX_ERR_NOT_FOUND);
    assert_int_equal(rt_service_check_secret(dir, "token file", why, sizeof(why)), PX_ERR_IO);
    assert_non_null(strstr(why, "not a regular file"));
}

static void test_check_readable(void **state)
{
    (void)state;
    char why[512];
    const char *hidden = "x";
    put(at("cfg600"), "{}", 0600);
    assert_int_equal(
        rt_service_check_readable(at("cfg600"), "config file", &hidden, why, sizeof(why)),
        PX_ERR_DENIED);
    assert_non_null(strstr(why, "chmod o+r"));
    put(at("cfg644"), "{}", 0644);
    assert_int_equal(chmod(dir, 0700), 0);
    assert_int_equal(
        rt_service_check_readable(at("cfg644"), "config file", &hidden, why, sizeof(why)),
        PX_ERR_DENIED);
    assert_non_null(strstr(why, "not searchable by others"));
    assert_int_equal(chmod(dir, 0711), 0);
    assert_int_equal(
        rt_service_check_readable(at("cfg644"), "config file", &hidden, why, sizeof(why)), 0);
    /* The sandbox hides /tmp (PrivateTmp): said, not refused. */
    assert_string_equal(hidden, "PrivateTmp=yes");
    assert_int_equal(chmod(dir, 0700), 0);
}

static void test_low_port(void **state)
{
    (void)state;
    assert_true(rt_service_low_port("0.0.0.0:443"));
    assert_true(rt_service_low_port("[::]:80"));
    assert_false(rt_service_low_port("127.0.0.1:8443"));
    assert_false(rt_service_low_port("127.0.0.1:1024"));
    assert_false(rt_service_low_port("nonsense"));
    assert_false(rt_service_low_port(NULL));
}

static void test_args(void **state)
{
    (void)state;
    const char *token = NULL, *config = NULL, *rest[16];
    int no_start = 0;
    size_t n = 0;
    char why[256];
    const struct rt_service_opt opts[] = {{"token-file", &token, NULL, NULL},
                                          {"config", &config, NULL, NULL},
                                          {"no-start", NULL, &no_start, NULL},
                                          {"token", NULL, NULL, "no tokens on command lines"},
                                          {NULL, NULL, NULL, NULL}};
    char *argv[] = {"--hostname", "a.example",  "--token-file=/t",  "--config",
                    "/c",         "--no-start", "--loglevel=debug", "--",
                    "--config",   "x"};
    assert_int_equal(rt_service_args(10, argv, opts, rest, &n, why, sizeof(why)), 0);
    assert_string_equal(token, "/t");
    assert_string_equal(config, "/c");
    assert_int_equal(no_start, 1);
    assert_int_equal(n, 5);
    const char *want[] = {"--hostname", "a.example", "--loglevel=debug", "--config", "x"};
    for (size_t i = 0; i < 5; i++)
        assert_string_equal(rest[i], want[i]);

    char *refused[] = {"--token", "secret"};
    assert_int_equal(rt_service_args(2, refused, opts, rest, &n, why, sizeof(why)), PX_ERR_INVAL);
    assert_string_equal(why, "no tokens on command lines");
    char *refused_eq[] = {"--token=secret"};
    assert_int_equal(rt_service_args(1, refused_eq, opts, rest, &n, why, sizeof(why)),
                     PX_ERR_INVAL);
    /* getopt would read "--tok" as an abbreviation: never pass it on. */
    char *abbrev[] = {"--tok", "secret"};
    assert_int_equal(rt_service_args(2, abbrev, opts, rest, &n, why, sizeof(why)), PX_ERR_INVAL);
    assert_non_null(strstr(why, "spell out"));
    char *missing[] = {"--config"};
    assert_int_equal(rt_service_args(1, missing, opts, rest, &n, why, sizeof(why)), PX_ERR_INVAL);
    assert_non_null(strstr(why, "needs a value"));
    char *flag_value[] = {"--no-start=yes"};
    assert_int_equal(rt_service_args(1, flag_value, opts, rest, &n, why, sizeof(why)),
                     PX_ERR_INVAL);
}

/* The host for these tests: units in dir/units, systemd "running" when
 * dir/run exists, the stand-in systemctl. */
static struct rt_service_host host(int start)
{
    static char units[300], run[300], ctl[300];
    snprintf(units, sizeof(units), "%s/units", dir);
    snprintf(run, sizeof(run), "%s/run", dir);
    snprintf(ctl, sizeof(ctl), "%s/systemctl", dir);
    mkdir(units, 0755);
    struct rt_service_host h = {units, run, ctl, start};
    return h;
}

static const char unit_text[] = "# Written by `x service install`; `x service uninstall` "
                                "removes it.\n[Unit]\nDescription=x\n";

static void test_install_where_systemd_runs(void **state)
{
    (void)state;
    char why[512], out[2048] = "";
    struct rt_service_host h = host(1);
    assert_int_equal(mkdir(at("run"), 0755), 0);
    unlink(at("systemctl.log"));
    FILE *f = fmemopen(out, sizeof(out), "w");
    assert_int_equal(rt_service_install(&h, "x", unit_text, f, why, sizeof(why)), 0);
    fclose(f);
    assert_string_equal(slurp(at("units/x.service")), unit_text);
    struct stat st;
    assert_int_equal(stat(at("units/x.service"), &st), 0);
    assert_int_equal(st.st_mode & 07777, 0644);
    assert_string_equal(slurp(at("systemctl.log")), "daemon-reload\nenable --now x.service\n");
    assert_non_null(strstr(out, "enable --now x.service"));

    unlink(at("systemctl.log"));
    memset(out, 0, sizeof(out));
    f = fmemopen(out, sizeof(out), "w");
    assert_int_equal(rt_service_uninstall(&h, "x", "x service install", f, why, sizeof(why)), 0);
    fclose(f);
    assert_int_equal(access(at("units/x.service"), F_OK), -1);
    assert_string_equal(slurp(at("systemctl.log")), "disable --now x.service\ndaemon-reload\n");
    assert_non_null(strstr(out, "removed "));
    assert_int_equal(rmdir(at("run")), 0);
}

static void test_install_without_systemd(void **state)
{
    (void)state;
    char why[512], out[2048] = "";
    struct rt_service_host h = host(1);
    unlink(at("systemctl.log"));
    FILE *f = fmemopen(out, sizeof(out), "w");
    assert_int_equal(rt_service_install(&h, "x", unit_text, f, why, sizeof(why)), 0);
    fclose(f);
    assert_non_null(strstr(out, "systemd is not running here; to enable and start it, run:\n"
                                "  systemctl daemon-reload\n"
                                "  systemctl enable --now x.service\n"));
    assert_string_equal(slurp(at("systemctl.log")), ""); /* not run */

    /* --no-start says so, whether systemd runs or not. */
    struct rt_service_host no_start = host(0);
    assert_int_equal(mkdir(at("run"), 0755), 0);
    memset(out, 0, sizeof(out));
    f = fmemopen(out, sizeof(out), "w");
    assert_int_equal(rt_service_install(&no_start, "x", unit_text, f, why, sizeof(why)), 0);
    fclose(f);
    assert_non_null(strstr(out, "not started (--no-start)"));
    assert_string_equal(slurp(at("systemctl.log")), "");
    assert_int_equal(rmdir(at("run")), 0);

    /* An enable made while systemd ran left a link: uninstall removes it. */
    assert_int_equal(mkdir(at("units/multi-user.target.wants"), 0755), 0);
    assert_int_equal(symlink(at("units/x.service"), at("units/multi-user.target.wants/x.service")),
                     0);
    memset(out, 0, sizeof(out));
    f = fmemopen(out, sizeof(out), "w");
    assert_int_equal(rt_service_uninstall(&h, "x", "x service install", f, why, sizeof(why)), 0);
    fclose(f);
    assert_int_equal(access(at("units/x.service"), F_OK), -1);
    struct stat st;
    assert_int_equal(lstat(at("units/multi-user.target.wants/x.service"), &st), -1);
    assert_non_null(strstr(out, "when it is, run: systemctl daemon-reload"));
    assert_string_equal(slurp(at("systemctl.log")), "");
}

static void test_uninstall_refuses(void **state)
{
    (void)state;
    char why[512], out[1024];
    struct rt_service_host h = host(1);
    FILE *f = fmemopen(out, sizeof(out), "w");
    assert_int_equal(rt_service_uninstall(&h, "gone", "x service install", f, why, sizeof(why)),
                     PX_ERR_NOT_FOUND);
    assert_non_null(strstr(why, "nothing to uninstall"));
    /* A unit someone else wrote (a package's) stays. */
    put(at("units/pkg.service"), "[Unit]\nDescription=packaged\n", 0644);
    assert_int_equal(rt_service_uninstall(&h, "pkg", "pkg service install", f, why, sizeof(why)),
                     PX_ERR_DENIED);
    assert_non_null(strstr(why, "was not written by `pkg service install`; not removing it"));
    assert_int_equal(access(at("units/pkg.service"), F_OK), 0);
    fclose(f);
}

static void test_install_failures(void **state)
{
    (void)state;
    char why[512], out[1024];
    struct rt_service_host h = host(1);
    FILE *f = fmemopen(out, sizeof(out), "w");
    /* A unit dir that is not there: said, with the fix. */
    struct rt_service_host nowhere = h;
    nowhere.unit_dir = at("no/such/dir");
    assert_int_equal(rt_service_install(&nowhere, "x", unit_text, f, why, sizeof(why)), PX_ERR_IO);
    assert_non_null(strstr(why, "cannot write "));
    /* A systemctl that fails: the unit is written, the failure said. */
    struct rt_service_host failing = h;
    char ctl[300];
    snprintf(ctl, sizeof(ctl), "%s/systemctl-fails", dir);
    put(ctl, "#!/bin/sh\nexit 5\n", 0755);
    failing.systemctl = ctl;
    assert_int_equal(mkdir(at("run"), 0755), 0);
    assert_int_equal(rt_service_install(&failing, "x", unit_text, f, why, sizeof(why)), PX_ERR_IO);
    assert_non_null(strstr(why, "daemon-reload` failed (exit status 5)"));
    assert_int_equal(access(at("units/x.service"), F_OK), 0);
    assert_int_equal(rmdir(at("run")), 0);
    fclose(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quote),
        cmocka_unit_test(test_unit_hardening),
        cmocka_unit_test(test_unit_refuses_control_characters),
        cmocka_unit_test(test_review_12_1_man_page_only_when_found),
        cmocka_unit_test(test_review_12_7_paths_escaped),
        cmocka_unit_test(test_check_secret),
        cmocka_unit_test(test_check_readable),
        cmocka_unit_test(test_low_port),
        cmocka_unit_test(test_args),
        cmocka_unit_test(test_install_where_systemd_runs),
        cmocka_unit_test(test_install_without_systemd),
        cmocka_unit_test(test_uninstall_refuses),
        cmocka_unit_test(test_install_failures),
    };
    return cmocka_run_group_tests_name("rt_service", tests, setup, teardown);
}
