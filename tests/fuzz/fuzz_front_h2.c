/* libFuzzer target for the browser HTTP/2 front (es_front_h2 + es_req).
 * The input is what a browser sends on one HTTP/2 connection (client
 * preface, frames). It is fed in network-sized pieces (seeded from the input)
 * to an in-memory front whose requests cross an in-memory tunnel to a real
 * connector answering from hello_world / http_status rules.
 * Properties: no crash or leak; the front's first frame is its SETTINGS;
 * both tunnel links survive, and a fresh browser still gets a 200 through
 * them (one browser cannot take the tunnel offline). */
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
    fz_browser_input(data, size, "h2", fz_h2_settings_first_or_nothing);
    return 0;
}
