#include "rt_service.h"
#include "px_err.h"
#include "px_token.h"

#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static int has_control(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 1;
    return 0;
}

int rt_service_quote(struct px_buf *out, const char *word)
{
    if (has_control(word))
        return PX_ERR_INVAL;
    int plain = *word != '\0';
    for (const char *p = word; *p; p++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._:,+=@-", *p))
            plain = 0;
    int rc = plain ? 0 : px_buf_append_str(out, "\"");
    for (const char *p = word; rc == 0 && *p; p++) {
        switch (*p) {
        case '%':
            rc = px_buf_append_str(out, "%%");
            break;
        case '$':
            rc = px_buf_append_str(out, "$$");
            break;
        case '"':
            rc = px_buf_append_str(out, "\\\"");
            break;
        case '\\':
            rc = px_buf_append_str(out, "\\\\");
            break;
        default:
            rc = px_buf_append(out, p, 1);
        }
    }
    if (rc == 0 && !plain)
        rc = px_buf_append_str(out, "\"");
    return rc;
}

/* The sandbox, the same for both daemons. Each line is documented in
 * systemd.exec(5); together they leave the daemon its state directory, the
 * network and nothing else to write. */
static const char hardening[] = "DynamicUser=yes\n"
                                "UMask=0077\n"
                                "NoNewPrivileges=yes\n"
                                "ProtectSystem=strict\n"
                                "ProtectHome=yes\n"
                                "PrivateTmp=yes\n"
                                "PrivateDevices=yes\n"
                                "ProtectKernelTunables=yes\n"
                                "ProtectKernelModules=yes\n"
                                "ProtectKernelLogs=yes\n"
                                "ProtectControlGroups=yes\n"
                                "ProtectClock=yes\n"
                                "ProtectHostname=yes\n"
                                "ProtectProc=invisible\n"
                                "ProcSubset=pid\n"
                                "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK\n"
                                "RestrictNamespaces=yes\n"
                                "RestrictRealtime=yes\n"
                                "RestrictSUIDSGID=yes\n"
                                "LockPersonality=yes\n"
                                "MemoryDenyWriteExecute=yes\n"
                                "SystemCallArchitectures=native\n"
                                "SystemCallFilter=@system-service\n"
                                "SystemCallFilter=~@privileged\n"
                                "SystemCallErrorNumber=EPERM\n";

/* A path after "Key=" (token_file, env_file): systemd expands specifiers
 * there ("%%" is a "%") but quotes nothing. It strips whitespace at either
 * end of a value and a backslash at the end continues the line, so a path
 * with whitespace, a control character or a backslash is refused rather
 * than written as some other path. */
static int path_line(struct px_buf *out, const char *key, const char *prefix, const char *path,
                     char *why, size_t whylen)
{
    if (path[0] != '/') {
        snprintf(why, whylen, "the path for %s= must be absolute", key);
        return PX_ERR_INVAL;
    }
    for (const char *p = path; *p; p++) {
        const char *what = *p == ' '                                ? "a space"
                           : *p == '\\'                             ? "a backslash"
                           : (unsigned char)*p < 0x20 || *p == 0x7f ? "a control character"
                                                                    : NULL;
        if (what) {
            snprintf(why, whylen,
                     "the path for %s= holds %s, which a unit cannot name; use a "
                     "path without it",
                     key, what);
            return PX_ERR_INVAL;
        }
    }
    int rc = px_buf_appendf(out, "%s=%s", key, prefix);
    for (const char *p = path; rc == 0 && *p; p++)
        rc = *p == '%' ? px_buf_append_str(out, "%%") : px_buf_append(out, p, 1);
    return rc == 0 ? px_buf_append_str(out, "\n") : rc;
}

/* 1 if the child pid exited 0; waits across signals. */
static int exited_ok(pid_t pid)
{
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return 0;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

int rt_service_man_page(const char *man, const char *name)
{
    posix_spawn_file_actions_t fa;
    if (posix_spawn_file_actions_init(&fa) != 0)
        return 0;
    char *argv[] = {(char *)man, "-w", "1", (char *)name, NULL};
    pid_t pid;
    int found = 0;
    if (posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0) == 0 &&
        posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0) == 0 &&
        posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0) == 0 &&
        posix_spawnp(&pid, man, &fa, NULL, argv, environ) == 0)
        found = exited_ok(pid);
    posix_spawn_file_actions_destroy(&fa);
    return found;
}

int rt_service_unit(const struct rt_service *s, struct px_buf *out, char *why, size_t whylen)
{
    int rc = 0;
    /* "connector service install" -> "connector service uninstall" */
    size_t wl = s->writer ? strlen(s->writer) : 0, il = strlen(" install");
    if (s->writer)
        rc = px_buf_appendf(out, "# Written by `%s`; `%.*s uninstall` removes it.\n", s->writer,
                            (int)(wl > il ? wl - il : wl), s->writer);
    if (rc == 0)
        rc = px_buf_appendf(out,
                            "[Unit]\n"
                            "Description=%s\n",
                            s->description);
    if (rc == 0 && s->man_page)
        rc = px_buf_appendf(out, "Documentation=man:%s(1)\n", s->name);
    if (rc == 0)
        rc = px_buf_append_str(out, "Wants=network-online.target\n"
                                    "After=network-online.target\n"
                                    "\n"
                                    "[Service]\n"
                                    "Type=exec\n"
                                    "ExecStart=");
    if (rc == 0 && (rc = rt_service_quote(out, s->bin)) == PX_ERR_INVAL)
        snprintf(why, whylen, "the binary's path holds a control character");
    if (rc == 0 && s->exec_fixed && s->exec_fixed[0])
        rc = px_buf_appendf(out, " %s", s->exec_fixed);
    for (size_t i = 0; rc == 0 && i < s->n_args; i++) {
        rc = px_buf_append_str(out, " ");
        if (rc == 0 && (rc = rt_service_quote(out, s->args[i])) == PX_ERR_INVAL)
            snprintf(why, whylen,
                     "argument %zu holds a control character: it cannot go into a "
                     "unit",
                     i + 1);
    }
    if (rc == 0)
        rc = px_buf_append_str(out, "\n");
    if (rc == 0 && s->reload_hup)
        rc = px_buf_append_str(out, "ExecReload=kill -HUP $MAINPID\n");
    if (rc == 0)
        rc = px_buf_appendf(out,
                            "Restart=on-failure\n"
                            "RestartSec=5s\n"
                            "TimeoutStopSec=%us\n",
                            s->stop_timeout_s ? s->stop_timeout_s : 90);
    if (rc == 0 && s->env_file)
        rc = path_line(out, "EnvironmentFile", "-", s->env_file, why, whylen);
    if (rc == 0 && s->token_file)
        rc =
            path_line(out, "LoadCredential", RT_SERVICE_CREDENTIAL ":", s->token_file, why, whylen);
    if (rc == 0)
        rc = px_buf_appendf(out, "StateDirectory=%s\nStateDirectoryMode=0700\n%s", s->name,
                            hardening);
    /* Binding below 1024 is the only privilege either daemon needs. */
    if (rc == 0)
        rc = px_buf_append_str(out, s->low_ports ? "CapabilityBoundingSet=CAP_NET_BIND_SERVICE\n"
                                                   "AmbientCapabilities=CAP_NET_BIND_SERVICE\n"
                                                 : "CapabilityBoundingSet=\n"
                                                   "AmbientCapabilities=\n");
    if (rc == 0)
        rc = px_buf_append_str(out, "\n[Install]\nWantedBy=multi-user.target\n");
    if (rc == PX_ERR_NOMEM)
        snprintf(why, whylen, "out of memory");
    return rc;
}

/* How group/other access shows in a message, worst first. */
static const char *exposure(mode_t mode)
{
    if (mode & 022)
        return "writable by others";
    if (mode & 044)
        return "readable by others";
    return "accessible by others";
}

int rt_service_check_secret(const char *path, const char *what, char *why, size_t whylen)
{
    struct stat st;
    if (stat(path, &st) < 0) {
        int e = errno;
        snprintf(why, whylen, "cannot use %s %s: %s", what, path, strerror(e));
        return e == ENOENT ? PX_ERR_NOT_FOUND : PX_ERR_IO;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(why, whylen, "%s %s is not a regular file", what, path);
        return PX_ERR_IO;
    }
    if (st.st_mode & 077) {
        snprintf(why, whylen,
                 "%s %s is %s (mode %04o); it must be mode 0600 or stricter; run: chmod 600 %s",
                 what, path, exposure(st.st_mode), (unsigned)(st.st_mode & 07777), path);
        return PX_ERR_DENIED;
    }
    return 0;
}

/* 1 if path is dir or under it. */
static int under(const char *path, const char *dir)
{
    size_t n = strlen(dir);
    return strncmp(path, dir, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

int rt_service_check_readable(const char *path, const char *what, const char **hidden, char *why,
                              size_t whylen)
{
    static const struct {
        const char *dir, *setting;
    } hiding[] = {{"/home", "ProtectHome=yes"},
                  {"/root", "ProtectHome=yes"},
                  {"/run/user", "ProtectHome=yes"},
                  {"/tmp", "PrivateTmp=yes"},
                  {"/var/tmp", "PrivateTmp=yes"}};
    if (hidden) {
        *hidden = NULL;
        for (size_t i = 0; i < sizeof(hiding) / sizeof(hiding[0]); i++)
            if (under(path, hiding[i].dir))
                *hidden = hiding[i].setting;
    }
    struct stat st;
    if (stat(path, &st) < 0) {
        snprintf(why, whylen, "cannot use %s %s: %s", what, path, strerror(errno));
        return PX_ERR_IO;
    }
    if (!(st.st_mode & S_IROTH)) {
        snprintf(why, whylen,
                 "%s %s is not readable by others (mode %04o), and the service runs as a "
                 "dynamic user; run: chmod o+r %s",
                 what, path, (unsigned)(st.st_mode & 07777), path);
        return PX_ERR_DENIED;
    }
    char *dir = strdup(path);
    if (!dir) {
        snprintf(why, whylen, "out of memory");
        return PX_ERR_NOMEM;
    }
    int rc = 0;
    for (char *slash = strrchr(dir, '/'); slash && rc == 0; slash = strrchr(dir, '/')) {
        *slash = '\0';
        const char *d = dir[0] ? dir : "/";
        if (stat(d, &st) == 0 && !(st.st_mode & S_IXOTH)) {
            snprintf(why, whylen,
                     "the service (a dynamic user) cannot reach %s %s: directory %s is not "
                     "searchable by others (mode %04o); run: chmod o+x %s, or move the file",
                     what, path, d, (unsigned)(st.st_mode & 07777), d);
            rc = PX_ERR_DENIED;
        }
        if (!dir[0])
            break;
    }
    free(dir);
    return rc;
}

int rt_service_low_port(const char *addr)
{
    char host[256];
    int port;
    return addr && px_split_hostport(addr, host, sizeof(host), &port) == 0 && port > 0 &&
           port < 1024;
}

/* Runs systemctl with args (NULL-terminated, after "systemctl"), saying the
 * command on out first. Returns 0, or PX_ERR_IO with why. */
static int systemctl(const struct rt_service_host *h, const char *const *args, FILE *out, char *why,
                     size_t whylen)
{
    char *argv[8];
    size_t n = 0;
    argv[n++] = (char *)h->systemctl;
    fprintf(out, "+ %s", h->systemctl);
    for (; *args && n < sizeof(argv) / sizeof(argv[0]) - 1; args++) {
        argv[n++] = (char *)*args;
        fprintf(out, " %s", *args);
    }
    argv[n] = NULL;
    fprintf(out, "\n");
    fflush(out);
    pid_t pid;
    int e = posix_spawnp(&pid, h->systemctl, NULL, NULL, argv, environ);
    if (e != 0) {
        snprintf(why, whylen, "cannot run %s: %s", h->systemctl, strerror(e));
        return PX_ERR_IO;
    }
    int st;
    while (waitpid(pid, &st, 0) < 0) {
        if (errno != EINTR) {
            snprintf(why, whylen, "cannot wait for %s: %s", h->systemctl, strerror(errno));
            return PX_ERR_IO;
        }
    }
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        snprintf(why, whylen, "`%s %s%s%s` failed (%s %d)", h->systemctl, argv[1],
                 argv[2] ? " " : "", argv[2] ? argv[2] : "",
                 WIFEXITED(st) ? "exit status" : "signal",
                 WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
        return PX_ERR_IO;
    }
    return 0;
}

static int systemd_runs(const struct rt_service_host *h)
{
    struct stat st;
    return stat(h->systemd_dir, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Writes all of data, across short writes and signals. */
static int write_all(int fd, const char *data, size_t n)
{
    while (n > 0) {
        ssize_t k = write(fd, data, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return -1;
        data += k;
        n -= (size_t)k;
    }
    return 0;
}

/* Writes text to path, mode 0644, through a temp file beside it renamed
 * into place. Returns 0 or -1 with errno set. */
static int write_unit(const char *path, const char *text)
{
    size_t n = strlen(path) + 16;
    char *tmp = malloc(n);
    if (!tmp) {
        errno = ENOMEM;
        return -1;
    }
    snprintf(tmp, n, "%s.XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        int e = errno;
        free(tmp);
        errno = e;
        return -1;
    }
    int rc = -1;
    if (fchmod(fd, 0644) == 0 && write_all(fd, text, strlen(text)) == 0 && fsync(fd) == 0)
        rc = 0;
    int e = errno;
    if (close(fd) < 0 && rc == 0) {
        rc = -1;
        e = errno;
    }
    if (rc == 0 && rename(tmp, path) < 0) {
        rc = -1;
        e = errno;
    }
    if (rc < 0)
        unlink(tmp);
    free(tmp);
    errno = e;
    return rc;
}

/* h->unit_dir/NAME.service (malloc'd), or NULL. */
static char *unit_path(const struct rt_service_host *h, const char *name, const char *sub)
{
    size_t n = strlen(h->unit_dir) + strlen(name) + (sub ? strlen(sub) + 1 : 0) + 16;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s%s%s.service", h->unit_dir, sub ? sub : "", sub ? "/" : "", name);
    return p;
}

int rt_service_install(const struct rt_service_host *h, const char *name, const char *unit,
                       FILE *out, char *why, size_t whylen)
{
    char *path = unit_path(h, name, NULL);
    int rc = PX_ERR_NOMEM;
    if (!path) {
        snprintf(why, whylen, "out of memory");
        goto out;
    }
    if (write_unit(path, unit) < 0) {
        int e = errno;
        snprintf(why, whylen, "cannot write %s: %s%s", path, strerror(e),
                 e == EACCES || e == EPERM || e == EROFS ? " (run as root, or give --unit-dir)"
                                                         : "");
        rc = e == ENOMEM ? PX_ERR_NOMEM : PX_ERR_IO;
        goto out;
    }
    fprintf(out, "wrote %s\n", path);
    char unit_name[300];
    snprintf(unit_name, sizeof(unit_name), "%s.service", name);
    if (h->start && systemd_runs(h)) {
        const char *reload[] = {"daemon-reload", NULL};
        const char *enable[] = {"enable", "--now", unit_name, NULL};
        rc = systemctl(h, reload, out, why, whylen);
        if (rc == 0)
            rc = systemctl(h, enable, out, why, whylen);
        if (rc == 0)
            fprintf(out,
                    "%s is enabled and started; its log: journalctl -u %s; its state: "
                    "systemctl status %s\n",
                    unit_name, unit_name, unit_name);
        goto out;
    }
    fprintf(out,
            "%s; to enable and start it, run:\n"
            "  systemctl daemon-reload\n"
            "  systemctl enable --now %s\n",
            h->start ? "systemd is not running here" : "not started (--no-start)", unit_name);
    rc = 0;
out:
    free(path);
    return rc;
}

/* 0 when path's first line names writer; PX_ERR_NOT_FOUND, PX_ERR_DENIED
 * or PX_ERR_IO with why. */
static int check_writer(const char *path, const char *writer, char *why, size_t whylen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        int e = errno;
        snprintf(why, whylen, "cannot read %s: %s%s", path, strerror(e),
                 e == ENOENT ? " (nothing to uninstall)" : "");
        return e == ENOENT ? PX_ERR_NOT_FOUND : PX_ERR_IO;
    }
    char line[256] = "", want[256];
    if (!fgets(line, sizeof(line), f))
        line[0] = '\0';
    fclose(f);
    snprintf(want, sizeof(want), "# Written by `%s`", writer);
    if (strncmp(line, want, strlen(want)) != 0) {
        snprintf(why, whylen, "%s was not written by `%s`; not removing it", path, writer);
        return PX_ERR_DENIED;
    }
    return 0;
}

int rt_service_uninstall(const struct rt_service_host *h, const char *name, const char *writer,
                         FILE *out, char *why, size_t whylen)
{
    char *path = unit_path(h, name, NULL);
    char *wants = unit_path(h, name, "multi-user.target.wants");
    char unit_name[300];
    snprintf(unit_name, sizeof(unit_name), "%s.service", name);
    int rc = PX_ERR_NOMEM;
    if (!path || !wants) {
        snprintf(why, whylen, "out of memory");
        goto out;
    }
    if ((rc = check_writer(path, writer, why, whylen)) < 0)
        goto out;
    int runs = systemd_runs(h);
    if (runs) {
        const char *disable[] = {"disable", "--now", unit_name, NULL};
        if ((rc = systemctl(h, disable, out, why, whylen)) < 0)
            goto out;
    } else {
        /* `systemctl enable` run while systemd was up leaves this link. */
        char target[4096];
        ssize_t n = readlink(wants, target, sizeof(target) - 1);
        if (n > 0) {
            target[n] = '\0';
            if (strcmp(target, path) == 0 && unlink(wants) == 0)
                fprintf(out, "removed %s\n", wants);
        }
    }
    if (unlink(path) < 0) {
        snprintf(why, whylen, "cannot remove %s: %s", path, strerror(errno));
        rc = PX_ERR_IO;
        goto out;
    }
    fprintf(out, "removed %s\n", path);
    if (runs) {
        const char *reload[] = {"daemon-reload", NULL};
        if ((rc = systemctl(h, reload, out, why, whylen)) < 0)
            goto out;
    } else {
        fprintf(out, "systemd is not running here; when it is, run: systemctl daemon-reload\n");
    }
    fprintf(out,
            "its state stays in /var/lib/private/%s (DynamicUser=yes); delete that directory "
            "to forget it\n",
            name);
    rc = 0;
out:
    free(path);
    free(wants);
    return rc;
}

int rt_service_args(int argc, char **argv, const struct rt_service_opt *opts, const char **rest,
                    size_t *n_rest, char *why, size_t whylen)
{
    size_t n = 0;
    int all_rest = 0;
    for (int i = 0; i < argc; i++) {
        const char *w = argv[i];
        if (all_rest || strncmp(w, "--", 2) != 0 || w[2] == '\0') {
            if (!all_rest && strcmp(w, "--") == 0) {
                all_rest = 1;
                continue;
            }
            rest[n++] = w;
            continue;
        }
        const char *name = w + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        const struct rt_service_opt *o = opts, *abbrev = NULL;
        for (; o->name; o++) {
            if (strlen(o->name) == len && strncmp(o->name, name, len) == 0)
                break;
            if (len < strlen(o->name) && strncmp(o->name, name, len) == 0)
                abbrev = o;
        }
        if (!o->name && abbrev) {
            snprintf(why, whylen, "spell out --%s (--%.*s abbreviates it)", abbrev->name, (int)len,
                     name);
            return PX_ERR_INVAL;
        }
        if (!o->name) {
            rest[n++] = w;
            continue;
        }
        if (o->refuse) {
            snprintf(why, whylen, "%s", o->refuse);
            return PX_ERR_INVAL;
        }
        if (o->flag) {
            if (eq) {
                snprintf(why, whylen, "--%s takes no value", o->name);
                return PX_ERR_INVAL;
            }
            *o->flag = 1;
            continue;
        }
        if (eq) {
            *o->value = eq + 1;
        } else if (i + 1 < argc) {
            *o->value = argv[++i];
        } else {
            snprintf(why, whylen, "--%s needs a value", o->name);
            return PX_ERR_INVAL;
        }
    }
    *n_rest = n;
    return 0;
}

int rt_service_uninstall_cmd(const char *prog, int argc, char **argv)
{
    const char *unit_dir = RT_SERVICE_UNIT_DIR;
    const struct rt_service_opt opts[] = {{"unit-dir", &unit_dir, NULL, NULL},
                                          {NULL, NULL, NULL, NULL}};
    const char *rest[8];
    size_t n_rest = 0;
    char why[1024], writer[128];
    if (argc > 8 || rt_service_args(argc, argv, opts, rest, &n_rest, why, sizeof(why)) < 0 ||
        n_rest) {
        fprintf(stderr, "%s: service uninstall takes only --unit-dir DIR\n", prog);
        return 2;
    }
    snprintf(writer, sizeof(writer), "%s service install", prog);
    const struct rt_service_host host = {unit_dir, RT_SERVICE_SYSTEMD_DIR, "systemctl", 1};
    if (rt_service_uninstall(&host, prog, writer, stdout, why, sizeof(why)) < 0) {
        fprintf(stderr, "%s: %s\n", prog, why);
        return 1;
    }
    return 0;
}

int rt_service_emit(const struct rt_service *s, const struct rt_service_host *h, const char *name,
                    FILE *out, char *why, size_t whylen)
{
    struct px_buf unit;
    px_buf_init(&unit);
    int r = rt_service_unit(s, &unit, why, whylen);
    const char *text = r == 0 ? px_buf_cstr(&unit) : NULL;
    if (!text) {
        if (r == 0) { /* rendered, but no room for its NUL */
            snprintf(why, whylen, "out of memory");
            r = PX_ERR_NOMEM;
        }
    } else if (!h) {
        fputs(text, out);
    } else if (rt_service_install(h, name, text, out, why, whylen) < 0) {
        r = PX_ERR_IO;
    }
    px_buf_cleanup(&unit);
    return r;
}
