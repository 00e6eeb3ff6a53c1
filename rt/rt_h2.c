#include "rt_h2.h"

int rt_h2_flush(struct rt_conn *c, nghttp2_session *s)
{
    if (!s)
        return 0;
    size_t room = c->in_close ? (size_t)1 << 20 : rt_conn_write_room(c);
    while (room > 0) {
        const uint8_t *data;
        ssize_t n = nghttp2_session_mem_send(s, &data);
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        if (rt_conn_write(c, data, (size_t)n) < 0)
            return -1;
        room = (size_t)n >= room ? 0 : room - (size_t)n;
    }
    if (!nghttp2_session_want_read(s) && !nghttp2_session_want_write(s))
        return -1;
    return 0;
}
