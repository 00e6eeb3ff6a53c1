#include "px_enroll.h"
#include "px_b64.h"
#include "px_err.h"
#include "px_json.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static char *finish(json_t *root)
{
    char *out = px_json_line(root);
    json_decref(root);
    return out;
}

char *px_enroll_req_encode(const struct px_enroll_req *r)
{
    char *sec = px_b64_encode(r->secret, sizeof(r->secret), 1);
    if (!sec)
        return NULL;
    char *out = finish(json_pack("{s:s,s:s,s:s}", "tunnel_id", r->tunnel_id, "secret", sec,
                                 "public_key", r->public_key_pem ? r->public_key_pem : ""));
    memset(sec, 0, strlen(sec));
    free(sec);
    return out;
}

char *px_enroll_resp_encode(const struct px_enroll_resp *r)
{
    if (r->ok) {
        json_t *root = json_pack("{s:b,s:s}", "ok", 1, "cert", r->cert_pem ? r->cert_pem : "");
        if (root && r->origin_ca &&
            json_object_set_new(root, "origin_ca", json_string(r->origin_ca)) < 0) {
            json_decref(root);
            return NULL;
        }
        return finish(root);
    }
    return finish(json_pack("{s:b,s:s,s:s}", "ok", 0, "code", r->code ? r->code : "internal",
                            "message", r->message ? r->message : ""));
}

int px_enroll_req_decode(const char *line, size_t len, struct px_enroll_req *r)
{
    memset(r, 0, sizeof(*r));
    if (len > PX_ENROLL_MAX_LINE)
        return PX_ERR_TOO_LARGE;
    json_error_t e;
    json_t *root = json_loadb(line, len, JSON_REJECT_DUPLICATES, &e);
    int rc = PX_ERR_INVAL;
    const char *id = json_string_value(json_object_get(root, "tunnel_id"));
    const char *sec = json_string_value(json_object_get(root, "secret"));
    const char *pk = json_string_value(json_object_get(root, "public_key"));
    uint8_t *raw = NULL;
    size_t rawlen = 0;
    if (!id || strlen(id) != 32 || strspn(id, "0123456789abcdef") != 32 || !sec || !pk ||
        !strstr(pk, "-----BEGIN PUBLIC KEY-----"))
        goto out;
    if (px_b64_decode(sec, strlen(sec), &raw, &rawlen) < 0 || rawlen != sizeof(r->secret))
        goto out;
    memcpy(r->tunnel_id, id, 33);
    memcpy(r->secret, raw, rawlen);
    r->public_key_pem = strdup(pk);
    rc = r->public_key_pem ? 0 : PX_ERR_NOMEM;
out:
    free(raw);
    json_decref(root);
    return rc;
}

/* A member that is absent leaves *out NULL; one that is not a string is an error. */
static int dup(json_t *o, const char *k, char **out)
{
    json_t *j = json_object_get(o, k);
    if (!j)
        return 0;
    const char *v = json_string_value(j);
    if (!v)
        return PX_ERR_INVAL;
    *out = strdup(v);
    return *out ? 0 : PX_ERR_NOMEM;
}

int px_enroll_resp_decode(const char *line, size_t len, struct px_enroll_resp *r)
{
    memset(r, 0, sizeof(*r));
    if (len > PX_ENROLL_MAX_LINE)
        return PX_ERR_TOO_LARGE;
    json_error_t e;
    json_t *root = json_loadb(line, len, JSON_REJECT_DUPLICATES, &e);
    int rc = PX_ERR_INVAL;
    json_t *ok = json_object_get(root, "ok");
    if (!json_is_boolean(ok))
        goto out;
    r->ok = json_is_true(ok);
    if (r->ok) {
        rc = dup(root, "cert", &r->cert_pem);
        if (rc == 0 && (!r->cert_pem || !strstr(r->cert_pem, "-----BEGIN CERTIFICATE-----")))
            rc = PX_ERR_INVAL;
        if (rc == 0)
            rc = dup(root, "origin_ca", &r->origin_ca);
        if (rc == 0 && r->origin_ca && !strstr(r->origin_ca, "-----BEGIN CERTIFICATE-----"))
            rc = PX_ERR_INVAL;
    } else {
        rc = dup(root, "code", &r->code);
        if (rc == 0)
            rc = dup(root, "message", &r->message);
        if (rc == 0 && !r->code)
            rc = PX_ERR_INVAL;
    }
out:
    json_decref(root);
    if (rc < 0)
        px_enroll_resp_cleanup(r);
    return rc;
}

void px_enroll_req_cleanup(struct px_enroll_req *r)
{
    free(r->public_key_pem);
    memset(r, 0, sizeof(*r));
}

void px_enroll_resp_cleanup(struct px_enroll_resp *r)
{
    free(r->cert_pem);
    free(r->origin_ca);
    free(r->code);
    free(r->message);
    memset(r, 0, sizeof(*r));
}

int px_enroll_code_permanent(const char *code)
{
    return code && (strcmp(code, "bad_token") == 0 || strcmp(code, "unknown_tunnel") == 0 ||
                    strcmp(code, "bad_secret") == 0);
}
