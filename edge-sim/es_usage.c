#include "es_usage.h"

#define DATA_DIR                                                                                   \
    "  --data-dir DIR      the edge's data dir (default ./edge-data)\n"                            \
    "  --store SPEC        the store: a postgres:// address several edges share, or a\n"           \
    "                      data dir (default: --data-dir; also EDGE_STORE)\n"                      \
    "  --ca-key-file FILE  the key sealing the CAs in a PostgreSQL store (needed with\n"           \
    "                      one; also EDGE_CA_KEY_FILE; `edge-sim store keygen` makes it)\n"

static const char tunnel_text[] =
    "usage: edge-sim tunnel create NAME [--hostname PATTERN]... [--edge HOST:PORT]...\n"
    "       edge-sim tunnel list\n"
    "       edge-sim tunnel delete NAME\n"
    "       edge-sim tunnel rotate-token NAME [--grace DURATION] [--edge HOST:PORT]...\n"
    "       (each takes --data-dir DIR)\n"
    "\n"
    "create prints a new tunnel's token on stdout; list shows the tunnels; delete\n"
    "removes one (its connections close within a second); rotate-token prints a\n"
    "new token for a tunnel. Each works while serve runs.\n" DATA_DIR;

static const char tunnel_create_text[] =
    "usage: edge-sim tunnel create NAME [--hostname PATTERN]... [--edge HOST:PORT]...\n"
    "                              [--data-dir DIR]\n"
    "\n"
    "Creates tunnel NAME (letters, digits, '-', '_', '.') and prints its token, for\n"
    "`connector run --token`, on stdout.\n"
    "  --hostname PATTERN  a hostname (exact or *.suffix) the tunnel may register;\n"
    "                      repeatable. Without it the tunnel may register any hostname\n"
    "                      no other tunnel holds (a warning says so)\n"
    "  --edge HOST:PORT    an edge address written into the token; repeatable (up to\n"
    "                      8). Default: the tunnel addresses of the serves running on\n"
    "                      the data dir, else the one that last ran\n" DATA_DIR;

static const char tunnel_list_text[] =
    "usage: edge-sim tunnel list [--data-dir DIR]\n"
    "\n"
    "Lists the tunnels: name, id, creation time and the hostnames each may register.\n" DATA_DIR;

static const char tunnel_delete_text[] =
    "usage: edge-sim tunnel delete NAME [--data-dir DIR]\n"
    "\n"
    "Deletes tunnel NAME: its connections close within a second and its hostnames\n"
    "are released.\n" DATA_DIR;

static const char tunnel_rotate_text[] =
    "usage: edge-sim tunnel rotate-token NAME [--grace DURATION] [--edge HOST:PORT]...\n"
    "                                    [--data-dir DIR]\n"
    "\n"
    "Prints a new token for tunnel NAME. Connectors already enrolled keep working.\n"
    "  --grace DURATION    how long the previous token still enrols (default 0;\n"
    "                      N followed by s, m, h or d, up to 3650d)\n"
    "  --edge HOST:PORT    as for tunnel create\n" DATA_DIR;

static const char ca_text[] =
    "usage: edge-sim ca [--data-dir DIR]\n"
    "\n"
    "Prints the CA (PEM) of the edge's browser-facing certificates, for browsers and\n"
    "curl --cacert (and connector access tcp --edge-ca).\n" DATA_DIR;

static const char origin_ca_text[] =
    "usage: edge-sim origin-ca [--data-dir DIR]\n"
    "\n"
    "Prints the origin CA (PEM): connectors trust it for https origins, so an origin\n"
    "certificate from `edge-sim origin-cert create` needs nothing copied.\n" DATA_DIR;

static const char origin_pull_ca_text[] =
    "usage: edge-sim origin-pull-ca [--data-dir DIR]\n"
    "\n"
    "Prints the origin-pull CA (PEM): an origin trusts it for the client certificates\n"
    "connectors present with originPull (SAN URI tunnel:<tunnel id>).\n" DATA_DIR;

static const char origin_cert_text[] =
    "usage: edge-sim origin-cert create --hostname NAME [--hostname NAME]... --out DIR\n"
    "                                   [--days N] [--csr FILE] [--data-dir DIR]\n"
    "\n"
    "Issues an origin server certificate from the edge's origin CA into\n"
    "DIR/<first hostname>.pem and .key.\n"
    "  --hostname NAME     a DNS name or IP address for the certificate; repeatable\n"
    "  --out DIR           where the files go\n"
    "  --days N            validity (default 5479, 15 years)\n"
    "  --csr FILE          sign this P-256 certificate request instead of making a key\n"
    "                      (no .key is written)\n" DATA_DIR;

static const char client_cert_text[] =
    "usage: edge-sim client-cert create NAME --out DIR [--days N] [--csr FILE]\n"
    "                                        [--p12-password-file FILE]\n"
    "       edge-sim client-cert list\n"
    "       edge-sim client-cert revoke NAME|SERIAL\n"
    "       (each takes --data-dir DIR)\n"
    "\n"
    "create issues a client certificate from the edge's client CA into\n"
    "DIR/NAME.pem, NAME.key and NAME.p12, and prints the PKCS#12 password on stderr;\n"
    "list shows the certificates issued; revoke refuses one from the next request on.\n"
    "  --out DIR           where create writes the files\n"
    "  --days N            validity (default 365)\n"
    "  --csr FILE          sign this P-256 certificate request (writes NAME.pem only)\n"
    "  --p12-password-file FILE\n"
    "                      the PKCS#12 password to use instead of a random one\n" DATA_DIR;

static const char client_ca_text[] =
    "usage: edge-sim client-ca add NAME --cert FILE [--crl FILE]\n"
    "       edge-sim client-ca update NAME --crl FILE\n"
    "       edge-sim client-ca list\n"
    "       edge-sim client-ca delete NAME\n"
    "       (each takes --data-dir DIR)\n"
    "\n"
    "Client CAs an access policy can trust (access set --ca NAME) besides the edge's\n"
    "own (\"edge\"). add uploads a CA bundle; update replaces its CRLs.\n"
    "  --cert FILE         PEM: one or more CA certificates\n"
    "  --crl FILE          PEM CRLs; every certificate on a client's path is then\n"
    "                      checked, and one whose issuer has no CRL is refused\n" DATA_DIR;

static const char access_text[] =
    "usage: edge-sim access set PATTERN --require-cert [--ca NAME]...\n"
    "                           [--allow-subject REGEX]... [--allow-fingerprint SHA256]...\n"
    "                           [--audience AUD]\n"
    "       edge-sim access list\n"
    "       edge-sim access delete PATTERN\n"
    "       edge-sim access rotate-key\n"
    "       (each takes --data-dir DIR)\n"
    "\n"
    "set requires a client certificate on hostnames matching PATTERN (exact or\n"
    "*.suffix); list shows the policies and the assertion issuer; delete opens a\n"
    "hostname again; rotate-key starts signing identity assertions with a new key.\n"
    "  --require-cert      ask for and check a client certificate\n"
    "  --ca NAME           a client CA to trust (repeatable; default edge, the edge's)\n"
    "  --allow-subject REGEX\n"
    "                      the subject must match one of these (extended regex)\n"
    "  --allow-fingerprint SHA256\n"
    "                      or the certificate must have one of these fingerprints\n"
    "  --audience AUD      the audience of the assertion (default the hostname)\n" DATA_DIR;

#define SERVICE_OPTIONS                                                                            \
    "  --bin PATH          the binary the unit runs (default: this one)\n"                         \
    "  --env-file FILE     also read serve options from $EDGE_SIM_OPTS in FILE\n"                  \
    "                      (EnvironmentFile=; listeners named there get no\n"                      \
    "                      CAP_NET_BIND_SERVICE)\n"
#define INSTALL_OPTIONS                                                                            \
    "  --unit-dir DIR      where the unit goes (default /etc/systemd/system)\n"                    \
    "  --no-start          write the unit only, and print the commands that start it\n"

static const char service_text[] =
    "usage: edge-sim service install [serve options] [--unit-dir DIR] [--bin PATH]\n"
    "                                [--no-start] [--env-file FILE]\n"
    "       edge-sim service uninstall [--unit-dir DIR]\n"
    "       edge-sim service unit [serve options] [--bin PATH] [--env-file FILE]\n"
    "\n"
    "install writes edge-sim.service, a hardened systemd unit that runs `edge-sim\n"
    "serve` with the options given (see edge-sim serve --help) as a dynamic user,\n"
    "its data dir /var/lib/edge-sim (StateDirectory=), and enables and starts it\n"
    "where systemd runs, else prints the commands that do. A listener below port\n"
    "1024 gives it CAP_NET_BIND_SERVICE, and nothing else does.\n" SERVICE_OPTIONS INSTALL_OPTIONS
    "uninstall stops and disables edge-sim.service and removes its unit (the data\n"
    "stays in /var/lib/private/edge-sim). unit prints the unit install would write,\n"
    "on stdout (for packages).\n";

static const char service_install_text[] =
    "usage: edge-sim service install [serve options] [--unit-dir DIR] [--bin PATH]\n"
    "                                [--no-start] [--env-file FILE]\n"
    "\n"
    "Writes DIR/edge-sim.service, a hardened systemd unit (DynamicUser=yes,\n"
    "StateDirectory=edge-sim, ProtectSystem=strict, NoNewPrivileges=yes,\n"
    "Restart=on-failure) that runs `edge-sim serve --data-dir /var/lib/edge-sim`\n"
    "with the serve options given (see edge-sim serve --help), checked as serve\n"
    "checks them. It keeps CAP_NET_BIND_SERVICE only when a listener is below port\n"
    "1024. Where systemd runs it then runs `systemctl daemon-reload` and `systemctl\n"
    "enable --now edge-sim.service`; elsewhere, or with --no-start, it prints those\n"
    "commands.\n" SERVICE_OPTIONS INSTALL_OPTIONS;

static const char service_uninstall_text[] =
    "usage: edge-sim service uninstall [--unit-dir DIR]\n"
    "\n"
    "Stops and disables edge-sim.service (where systemd runs), removes the unit\n"
    "`edge-sim service install` wrote (and no other file), and runs `systemctl\n"
    "daemon-reload`. The data stays in /var/lib/private/edge-sim.\n"
    "  --unit-dir DIR      where the unit is (default /etc/systemd/system)\n";

static const char service_unit_text[] =
    "usage: edge-sim service unit [serve options] [--bin PATH] [--env-file FILE]\n"
    "\n"
    "Prints on stdout the unit `service install` would write for these options: for\n"
    "a package, or to review it first.\n" SERVICE_OPTIONS;

static const char admin_text[] =
    "usage: edge-sim admin token [--data-dir DIR]\n"
    "\n"
    "Prints the bearer token of the admin API (admin.token in the data dir, mode\n"
    "0600), creating it when missing. Requests under /api/ need the header\n"
    "`Authorization: Bearer TOKEN`.\n" DATA_DIR;

static const char store_text[] =
    "usage: edge-sim store migrate\n"
    "       edge-sim store keygen FILE\n"
    "       edge-sim store export --out FILE\n"
    "       edge-sim store import FILE\n"
    "       (each takes --data-dir DIR, --store SPEC and --ca-key-file FILE)\n"
    "\n"
    "Several edges share one state through a PostgreSQL database (--store\n"
    "postgres://USER@HOST/DB): tunnels, hostname claims, access policies, client\n"
    "CAs, revocations and the edge's CAs, whose keys are sealed (AES-256-GCM) with the\n"
    "key in --ca-key-file; a change made at any edge takes effect at all of them.\n"
    "migrate creates or updates that database's schema (versioned; serve refuses a\n"
    "schema it does not know). keygen writes a new key file (64 hex digits, mode\n"
    "0600; `openssl rand -hex 32` makes one too): every edge sharing the store needs\n"
    "a copy. export writes a store's tunnels, routes, certificates, policies and CAs\n"
    "(keys in clear: mode 0600) to FILE; import reads such a file into a PostgreSQL\n"
    "store that has no tunnel yet, sealing the CA keys: an SQLite edge moves with\n"
    "`store export --data-dir DIR --out F` then `store import --store URL F`.\n"
    "  --out FILE          where export writes\n" DATA_DIR;

const struct rt_cli_usage es_usage[] = {
    {"serve", NULL},
    {"tunnel", tunnel_text},
    {"tunnel create", tunnel_create_text},
    {"tunnel list", tunnel_list_text},
    {"tunnel delete", tunnel_delete_text},
    {"tunnel rotate-token", tunnel_rotate_text},
    {"ca", ca_text},
    {"origin-ca", origin_ca_text},
    {"origin-pull-ca", origin_pull_ca_text},
    {"origin-cert", origin_cert_text},
    {"origin-cert create", origin_cert_text},
    {"client-cert", client_cert_text},
    {"client-cert create", client_cert_text},
    {"client-cert list", client_cert_text},
    {"client-cert revoke", client_cert_text},
    {"client-ca", client_ca_text},
    {"client-ca add", client_ca_text},
    {"client-ca update", client_ca_text},
    {"client-ca list", client_ca_text},
    {"client-ca delete", client_ca_text},
    {"access", access_text},
    {"access set", access_text},
    {"access list", access_text},
    {"access delete", access_text},
    {"access rotate-key", access_text},
    {"service", service_text},
    {"service install", service_install_text},
    {"service uninstall", service_uninstall_text},
    {"service unit", service_unit_text},
    {"admin", admin_text},
    {"admin token", admin_text},
    {"store", store_text},
    {"store migrate", store_text},
    {"store keygen", store_text},
    {"store export", store_text},
    {"store import", store_text},
    {NULL, NULL},
};
