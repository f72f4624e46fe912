#!/usr/bin/env bash
# whoami vs `openssl x509 -noout -subject`: whole-process wall time, one hyperfine run.
source "$(dirname "$0")/common.sh"
require hyperfine openssl
build_release
make_identity "$SCRATCH/certs" 4853b630822946019393b16c5b710b9e.d.wott.local
hyperfine -N --warmup 20 --min-runs 300 --export-markdown "$SCRATCH/whoami.md" \
    -n "wott-mqtt whoami" "$BIN whoami --cert-dir $SCRATCH/certs" \
    -n "wott-mqtt whoami --long" "$BIN whoami --long --cert-dir $SCRATCH/certs" \
    -n "openssl x509 -noout -subject" "openssl x509 -noout -subject -in $SCRATCH/certs/client.crt"
cat "$SCRATCH/whoami.md"
