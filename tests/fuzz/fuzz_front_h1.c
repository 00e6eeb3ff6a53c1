/* libFuzzer target for the browser HTTP/1.1 front (es_front_h1 + es_req).
 * The input is what a browser sends on one connection. It is fed in
 * network-sized pieces (seeded from the input) to an in-memory front whose
 * requests cross an in-memory tunnel to a real connector that answers from
 * hello_world / http_status rules (tests/support/mem_world).
 * Properties: no crash or leak; whatever the front writes starts as an
 * HTTP/1.1 response; both tunnel links survive, and a fresh browser still
 * gets a 200 through them (one browser cannot take the tunnel offline). */
#include "fuzz_world.h"

static const char ingress[] = FZ_INGRESS(FZ_RULE_APP FZ_RULE_STATUS FZ_RULE_HELLO);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fz_world_init(ingress, 0);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_browser_input(data, size, "http/1.1", fz_h1_response_or_nothing);
    return 0;
}
