/* rt_proc: the process start-up both daemons share, called first thing in
 * main (before any thread or loop exists; not thread-safe, call once). */
#ifndef RT_PROC_H
#define RT_PROC_H

/* Sets up the process for prog ("connector", "edge-sim"; names it in
 * messages):
 *   - umask 077: keys, certificates and databases are private to this user;
 *   - malloc keeps bulk buffers (64-256 KiB, freed and reallocated at line
 *     rate) in the heap instead of mapping and unmapping them each time;
 *   - the descriptor limit is raised to its hard limit (a socket a stream);
 *   - SIGPIPE is ignored: a write to a closed socket is an EPIPE to handle,
 *     not the end of the process;
 *   - wolfSSL's global state (px_tls_global_init). libcurl's is not set up
 *     here: the connector loads and initialises it on first use
 *     (connector/cn_curl.h), the edge never uses it.
 * Log settings stay with each command's flags (--loglevel).
 * Returns 0, or PX_ERR_TLS after saying so on stderr. */
int rt_proc_init(const char *prog);

#endif
