#!/usr/bin/env bash
# `server up` from the command to a broker that answers an mTLS CONNECT, vs
# what a script does by hand: `docker run -d` of the same image and config,
# then `mosquitto_sub -E` attempts until one connects. One hyperfine run, each
# iteration starting with no container. Then `server up` when the broker is
# already up (nothing to do but check it answers).
#
# The image must be present (nothing is pulled): BENCH_IMAGE, else
# eclipse-mosquitto:2, else the tests' local image (built by
# `cargo test --test docker_support`).
source "$(dirname "$0")/common.sh"
require hyperfine openssl docker mosquitto_sub
build_release

IMAGE="$(find_image)"

ID=4853b630822946019393b16c5b710b9e.d.wott.local
make_identity "$SCRATCH/certs" "$ID"
WOTT_NAME="wott-bench-up-$$"
PEER_NAME="wott-bench-peer-$$"
WOTT_PORT=18883
PEER_PORT=18884
SERVER_DIR="$SCRATCH/server"
remove_containers() { docker rm -f "$WOTT_NAME" "$PEER_NAME" >/dev/null 2>&1 || true; }
cleanup() { remove_containers; remove_scratch; }
trap cleanup EXIT

UP=("$BIN" --cert-dir "$SCRATCH/certs" --server-dir "$SERVER_DIR" -q server up
    --name "$WOTT_NAME" --image "$IMAGE" --bind 127.0.0.1 --port "$WOTT_PORT")

# One `server up` renders the config and stages the certificates the peer reuses.
"${UP[@]}" >/dev/null
remove_containers
PEER_DATA="$SCRATCH/peer-data"
mkdir -p "$PEER_DATA" && chown 1883:1883 "$PEER_DATA"

cat > "$SCRATCH/peer.sh" <<PEER
#!/usr/bin/env bash
docker run -d --name $PEER_NAME --restart unless-stopped -p 127.0.0.1:$PEER_PORT:8883 \\
    --mount type=bind,src=$SERVER_DIR,dst=/mosquitto/config,readonly \\
    --mount type=bind,src=$SERVER_DIR/certs,dst=/mosquitto/certs,readonly \\
    --mount type=bind,src=$PEER_DATA,dst=/mosquitto/data \\
    $IMAGE >/dev/null
until mosquitto_sub -h 127.0.0.1 -p $PEER_PORT -E -t bench/ready -i bench-peer \\
        --cafile $SCRATCH/certs/ca.crt --cert $SCRATCH/certs/client.crt --key $SCRATCH/certs/client.key \\
        2>/dev/null; do :; done
PEER
chmod +x "$SCRATCH/peer.sh"

hyperfine -N --warmup 2 --runs 20 --export-markdown "$SCRATCH/server-up.md" \
    --prepare "docker rm -f $WOTT_NAME" -n "wott-mqtt server up (new container → CONNACK)" "${UP[*]}" \
    --prepare "docker rm -f $PEER_NAME" -n "docker run -d + mosquitto_sub -E loop" "$SCRATCH/peer.sh"
remove_containers

"${UP[@]}" >/dev/null
hyperfine -N --warmup 5 --runs 50 --export-markdown "$SCRATCH/server-up-again.md" \
    -n "wott-mqtt server up (already up)" "${UP[*]}" \
    -n "mosquitto_sub -E (one mTLS connect)" \
    "mosquitto_sub -h 127.0.0.1 -p $WOTT_PORT -E -t bench/ready -i bench-once --cafile $SCRATCH/certs/ca.crt --cert $SCRATCH/certs/client.crt --key $SCRATCH/certs/client.key"

cat "$SCRATCH/server-up.md" "$SCRATCH/server-up-again.md"
