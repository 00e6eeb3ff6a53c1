/* es_admin_api: the admin listener's JSON API, /api/..., for a request the
 * router (es_admin.c) has already authenticated. Reads answer from the
 * registry and the store (es_admin_view.h); writes run the same operations
 * as the CLI (es_op.h) on serve's own database connection, then reload
 * serve (es_server_reload), so a change is in effect when it is answered.
 *
 *   GET    /api/tunnels                      the tunnels and their connectors
 *   POST   /api/tunnels                      {"name","hostnames":[..],"edges":[..]}
 *                                             -> 201 {"id","name","token","edges"}
 *   GET    /api/tunnels/NAME
 *   DELETE /api/tunnels/NAME
 *   POST   /api/tunnels/NAME/rotate-token    {"grace":"24h","edges":[..]}
 *   GET    /api/access
 *   PUT    /api/access/PATTERN               {"require_cert":true,"cas","allow_subjects",
 *                                              "allow_fingerprints","audience"}
 *   DELETE /api/access/PATTERN
 *   POST   /api/access/rotate-key
 *   GET    /api/client-cas
 *   POST   /api/client-cas                   {"name","cert","crl"?}
 *   PUT    /api/client-cas/NAME              {"crl": PEM or null}
 *   DELETE /api/client-cas/NAME
 *   GET    /api/client-certs
 *   POST   /api/client-certs                 {"name","days"?,"csr"?,"p12_password"?}
 *                                             -> 201 {"serial",...,"cert","key"?,"p12"?,...}
 *   POST   /api/client-certs/NAME_OR_SERIAL/revoke
 *   GET    /api/status                       the status page's data
 *
 * Path segments are percent-decoded. Bodies are one JSON object (empty
 * means {}); unknown fields are refused, so a misspelt one is not silently
 * ignored. Errors answer {"error":"..."}: 400 bad input, 404 no such
 * object or path, 405 wrong method (with the methods allowed), 409 the
 * name is taken or the object is in use, 500 the edge failed. */
#ifndef ES_ADMIN_API_H
#define ES_ADMIN_API_H

#include <stddef.h>

struct es_server;

struct es_admin_api_req {
    const char *method;
    const char *path; /* raw (not decoded), starting with "/api/" */
    const unsigned char *body;
    size_t body_len;
    long long since; /* when this serve started, unix seconds (for /api/status) */
};

struct es_admin_answer {
    int status;
    char *body;        /* malloc'd JSON text (caller frees); NULL when out of memory */
    const char *allow; /* with 405: the methods the path takes, e.g. "GET, POST" */
};

/* Answers req into *out (always filled; with body NULL, answer 500). */
void es_admin_api(struct es_server *srv, const struct es_admin_api_req *req,
                  struct es_admin_answer *out);

#endif
