#include "rt_proc.h"
#include "px_err.h"
#include "px_tls.h"

#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/stat.h>

int rt_proc_init(const char *prog)
{
    umask(077);
    /* Page faults on every reallocated buffer cost more CPU than the crypto. */
    mallopt(M_MMAP_THRESHOLD, 4 << 20);
    mallopt(M_TRIM_THRESHOLD, 32 << 20);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    signal(SIGPIPE, SIG_IGN);
    if (px_tls_global_init() < 0) {
        fprintf(stderr, "%s: cannot initialise wolfSSL\n", prog);
        return PX_ERR_TLS;
    }
    return 0;
}
