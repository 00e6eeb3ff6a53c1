/* px_version: the release both binaries report (`--version`, the
 * connector's REGISTER agent "connector/<version>"). One place, so the
 * package, the binaries and the edge's view of connectors agree. */
#ifndef PX_VERSION_H
#define PX_VERSION_H

#define PX_VERSION "0.1.0"

#endif
