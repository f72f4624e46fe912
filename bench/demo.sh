#!/usr/bin/env bash
# `wott-mqtt demo` (the README's first command) vs the same tutorial by hand
# in a shell script: openssl for a CA and the two identities, mosquitto.conf
# and permissions.acl with a grant, copies of the server's key for uid 1883,
# `docker run`, mosquitto_sub -E until the broker answers, a subscriber and a
# publisher on wott/temperature, then `docker rm -f` and `rm -r`. One
# hyperfine run, each iteration from nothing to nothing.
#
# The image must be present (nothing is pulled): BENCH_IMAGE, else
# eclipse-mosquitto:2, else the tests' local image (built by
# `cargo test --test docker_support`). The peer chowns to 1883: run as root.
source "$(dirname "$0")/common.sh"
require hyperfine openssl docker mosquitto_sub mosquitto_pub
build_release

IMAGE="$(find_image)"

PEER_NAME="wott-bench-demo-peer-$$"
PEER_PORT=18885
cleanup() { docker rm -f "$PEER_NAME" >/dev/null 2>&1 || true; remove_scratch; }
trap cleanup EXIT

cat > "$SCRATCH/peer.sh" <<PEER
#!/usr/bin/env bash
set -euo pipefail
source "$ROOT/bench/common.sh"
W=\$(mktemp -d /tmp/wott-bench-demo.XXXXXX)
SID=00000000000000000000000000000001.d.wott.local
CID=00000000000000000000000000000002.d.wott.local
make_identity "\$W/server/certs" "\$SID" "\$W/ca"
make_identity "\$W/client/certs" "\$CID" "\$W/ca"
S=\$W/server/mosquitto
mkdir -p "\$S/certs" "\$S/data"
cp "\$W/server/certs/"{client.crt,client.key,ca.crt} "\$S/certs/"
chown -R 1883:1883 "\$S/certs" "\$S/data"
cat > "\$S/mosquitto.conf" <<CONF
per_listener_settings false
allow_anonymous false
set_tcp_nodelay true
listener 8883
cafile /mosquitto/certs/ca.crt
certfile /mosquitto/certs/client.crt
keyfile /mosquitto/certs/client.key
require_certificate true
use_identity_as_username true
acl_file /mosquitto/config/permissions.acl
CONF
printf 'user %s\ntopic readwrite wott/temperature\n' "\$CID" > "\$S/permissions.acl"
docker run -d --name $PEER_NAME -p 127.0.0.1:$PEER_PORT:8883 \\
    --mount type=bind,src=\$S,dst=/mosquitto/config,readonly \\
    --mount type=bind,src=\$S/certs,dst=/mosquitto/certs,readonly \\
    --mount type=bind,src=\$S/data,dst=/mosquitto/data \\
    $IMAGE >/dev/null
TLS=(-h 127.0.0.1 -p $PEER_PORT --cafile "\$W/client/certs/ca.crt" --cert "\$W/client/certs/client.crt" --key "\$W/client/certs/client.key")
until mosquitto_sub "\${TLS[@]}" -E -t wott/temperature -i bench-ready 2>/dev/null; do :; done
mosquitto_sub "\${TLS[@]}" -t wott/temperature -C 1 -W 5 -i bench-sub > "\$W/got" &
SUB=\$!
until [ -s "\$W/got" ]; do mosquitto_pub "\${TLS[@]}" -t wott/temperature -m probe -i bench-pub; sleep 0.01; done
wait \$SUB
docker rm -f $PEER_NAME >/dev/null
rm -r "\$W"
PEER
chmod +x "$SCRATCH/peer.sh"

hyperfine -N --warmup 2 --runs 15 --export-markdown "$SCRATCH/demo.md" \
    -n "wott-mqtt demo" "$BIN -q demo --image $IMAGE" \
    --prepare "docker rm -f $PEER_NAME" -n "the tutorial by hand (openssl, docker run, mosquitto_sub/pub)" "$SCRATCH/peer.sh"

cat "$SCRATCH/demo.md"
