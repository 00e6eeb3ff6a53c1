#!/bin/bash
# The TLS scan (tlsscan.sh) as part of `make test`: about 60-80 s under
# ASan for both edge listeners and the connector. `make tlsscan` runs it alone.
exec bash "$(dirname "$0")/tlsscan.sh"
