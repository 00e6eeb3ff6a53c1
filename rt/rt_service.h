/* rt_service: both daemons as systemd services (`connector service`,
 * `edge-sim service`). One place writes the unit, hardened the same way for
 * both: a dynamic user, a private state directory, a read-only system, no
 * capabilities (CAP_NET_BIND_SERVICE only for a listener below 1024), and the
 * token handed over with LoadCredential= so it is never on a command line
 * and its file stays root's, mode 0600. The same place installs the unit
 * (enables and starts it where systemd runs, else prints the commands) and
 * removes it. */
#ifndef RT_SERVICE_H
#define RT_SERVICE_H

#include "px_buf.h"

#include <stddef.h>
#include <stdio.h>

/* Where units go when the operator names no --unit-dir. */
#define RT_SERVICE_UNIT_DIR "/etc/systemd/system"
/* Exists exactly when systemd is the running init (sd_booted(3)). */
#define RT_SERVICE_SYSTEMD_DIR "/run/systemd/system"
/* The name of the credential the token arrives as: ExecStart reads
 * %d/RT_SERVICE_CREDENTIAL ($CREDENTIALS_DIRECTORY/token). */
#define RT_SERVICE_CREDENTIAL "token"

/* One daemon's unit. Strings are borrowed; all but args are our own text. */
struct rt_service {
    const char *name;        /* the unit is NAME.service; StateDirectory=NAME */
    const char *description; /* Description= */
    /* The command that wrote the unit ("connector service install"): named
     * in the unit's first line, which uninstall looks for before it removes
     * a file. NULL for a unit printed for a package (no such line). */
    const char *writer;
    const char *bin;        /* absolute path of the binary */
    const char *exec_fixed; /* words after bin, as written: specifiers (%d, %S)
                             * and $VARIABLES allowed; never an operator's text */
    /* The operator's words after those: each is quoted and escaped so that
     * ExecStart passes it verbatim (no specifier, variable or word splitting
     * applies to it). A control character in one is refused. */
    const char *const *args;
    size_t n_args;
    /* Paths written after "Key=", where systemd expands specifiers but
     * quotes nothing: each "%" is written "%%"; a path that is not absolute
     * or holds whitespace, a control character or a backslash is refused. */
    const char *token_file; /* LoadCredential=token:PATH; or NULL */
    const char *env_file;   /* EnvironmentFile=-PATH (optional file); or NULL */
    /* Documentation=man:NAME(1). Only when man finds that page (see
     * rt_service_man_page): `systemd-analyze verify` runs man on it and
     * fails when the page is missing. */
    int man_page;
    int low_ports;           /* a listener below 1024: keep CAP_NET_BIND_SERVICE */
    int reload_hup;          /* ExecReload= sends SIGHUP (re-reads its config) */
    unsigned stop_timeout_s; /* TimeoutStopSec= (the daemon's drain time + margin) */
};

/* Appends s's unit file text to out. Returns 0; PX_ERR_INVAL with why when
 * an argument holds a control character, or token_file or env_file is one
 * the unit cannot name (see above); or PX_ERR_NOMEM. */
int rt_service_unit(const struct rt_service *s, struct px_buf *out, char *why, size_t whylen);

/* 1 when `MAN -w 1 NAME` exits 0: man finds page NAME(1), as `systemd-analyze
 * verify` will ask it for Documentation=man:NAME(1); else 0 (no such page,
 * or no man: a machine without manuals). man is the program ("man", looked
 * up in PATH); its output goes to /dev/null. */
int rt_service_man_page(const char *man, const char *name);

/* Appends word to out quoted for an ExecStart= line, so that systemd hands
 * the program exactly word: "%" becomes "%%", "$" "$$", and a word with
 * anything but [A-Za-z0-9/._:,+=@-] is put in double quotes with "\" and
 * "\"" escaped. Returns 0, PX_ERR_INVAL (a control character) or
 * PX_ERR_NOMEM. */
int rt_service_quote(struct px_buf *out, const char *word);

/* Checks path, a secret the unit loads with LoadCredential=: a regular file
 * that neither group nor others can use (mode 0600 or stricter). what names
 * it ("token file"). Returns 0; PX_ERR_DENIED with why naming the fix
 * ("token file F is readable by others (mode 0644); run: chmod 600 F");
 * PX_ERR_NOT_FOUND or PX_ERR_IO with why filled. */
int rt_service_check_secret(const char *path, const char *what, char *why, size_t whylen);

/* Checks that the service's dynamic user, which is in no group, can read
 * path: the file readable by others and every directory above it searchable
 * by others. Returns 0, or PX_ERR_DENIED with why naming the fix, or
 * PX_ERR_IO. Sets *hidden (when not NULL) to the hardening setting that
 * hides path from the service ("ProtectHome=yes", "PrivateTmp=yes") or
 * NULL. */
int rt_service_check_readable(const char *path, const char *what, const char **hidden, char *why,
                              size_t whylen);

/* 1 if addr ("host:port", "[v6]:port") listens on a port below 1024. */
int rt_service_low_port(const char *addr);

/* An option of `service install` itself, as against the daemon's own
 * options, which go through to ExecStart. Tables end with a NULL name. */
struct rt_service_opt {
    const char *name;   /* without "--" */
    const char **value; /* it takes an argument, stored here (the last wins) */
    int *flag;          /* or it takes none, and sets *flag = 1 */
    const char *refuse; /* or it is refused with this message (e.g. --token) */
};

/* Splits argv[0..argc) into the options in opts and the rest (in order,
 * into rest[], room for argc). "--NAME VALUE", "--NAME=VALUE" and "--NAME"
 * for a flag are taken; an option word that abbreviates one of opts' names
 * is refused (the daemon's getopt would read it as that option); a "--"
 * passes every word after it on. Returns 0 with *n_rest, or PX_ERR_INVAL
 * with why. */
int rt_service_args(int argc, char **argv, const struct rt_service_opt *opts, const char **rest,
                    size_t *n_rest, char *why, size_t whylen);

/* Where and how install and uninstall act. */
struct rt_service_host {
    const char *unit_dir;    /* RT_SERVICE_UNIT_DIR unless the operator names one */
    const char *systemd_dir; /* RT_SERVICE_SYSTEMD_DIR */
    const char *systemctl;   /* "systemctl", looked up in PATH */
    int start;               /* enable and start the unit (when systemd runs) */
};

/* Writes unit (text) to h->unit_dir/NAME.service, mode 0644, atomically.
 * Then, where systemd runs (h->systemd_dir exists) and h->start: runs
 * `systemctl daemon-reload` and `systemctl enable --now NAME.service`,
 * saying each on out; else says on out which commands do it. Returns 0;
 * PX_ERR_IO with why (the file cannot be written; a systemctl command
 * failed, after the unit was written); PX_ERR_NOMEM. */
int rt_service_install(const struct rt_service_host *h, const char *name, const char *unit,
                       FILE *out, char *why, size_t whylen);

/* The end of both daemons' `service unit` and `service install`: renders s
 * (rt_service_unit); with h NULL prints the unit on out, else installs it
 * as NAME (rt_service_install). Returns 0; PX_ERR_INVAL when the unit is
 * refused (the operator's input: exit 2); PX_ERR_NOMEM or PX_ERR_IO
 * otherwise (exit 1). why always says what failed. */
int rt_service_emit(const struct rt_service *s, const struct rt_service_host *h, const char *name,
                    FILE *out, char *why, size_t whylen);

/* Undoes rt_service_install for NAME: where systemd runs, `systemctl
 * disable --now NAME.service`, then removes the unit file and runs
 * `systemctl daemon-reload`; elsewhere removes the unit file and the
 * multi-user.target.wants link to it. Only a file whose first line names
 * writer (see struct rt_service) is removed. The state directory stays.
 * Returns 0; PX_ERR_NOT_FOUND (no such unit file), PX_ERR_DENIED (not
 * written by writer) or PX_ERR_IO, each with why. */
int rt_service_uninstall(const struct rt_service_host *h, const char *name, const char *writer,
                         FILE *out, char *why, size_t whylen);

/* `PROG service uninstall [--unit-dir DIR]` (argv: the words after
 * "uninstall"): rt_service_uninstall of PROG.service, written by "PROG
 * service install", saying what it did on stdout and why not on stderr.
 * Returns the exit status: 0, 1 (refused or failed) or 2 (usage error). */
int rt_service_uninstall_cmd(const char *prog, int argc, char **argv);

#endif
