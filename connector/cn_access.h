/* cn_access: the client side of TCP services, run on the user's laptop:
 * `connector access tcp --hostname H [--url ADDR]` carries each local TCP
 * connection (or stdin/stdout) to the edge as an HTTP/2 extended CONNECT
 * stream; the edge passes it through the tunnel to the connector, which
 * dials the tcp:// or ssh:// service. */
#ifndef CN_ACCESS_H
#define CN_ACCESS_H

/* argv[0] is "access". Returns the process exit code. */
int cn_access_main(int argc, char **argv);

#endif
