/* rt_h2: moves an nghttp2 session's output onto an rt_conn. */
#ifndef RT_H2_H
#define RT_H2_H

#include "rt_conn.h"

#include <nghttp2/nghttp2.h>

/* Serialises frames from s into c while c has room (unbounded while c is in
 * its final flush before closing). Returns 0, or -1 when the session failed
 * or has nothing more to read or write (the caller closes c). */
int rt_h2_flush(struct rt_conn *c, nghttp2_session *s);

#endif
