#!/usr/bin/env bash
# The local image (`server image`, the image policy's fallback):
#   1. `server image` when the image is current: the check that runs on
#      every offline `server up`/`demo` (target ≤ 0.2 s), beside
#      `docker image inspect` of the same tag;
#   2. `demo` where no Mosquitto image is here (target ≤ 15 s): the policy
#      pulls (no registry answers here), builds the local image from
#      scratch and runs it. So that every run really builds (the engine
#      keeps layers it has seen, and the image is the same for the same
#      inputs), each run starts with the local tag removed and builds from
#      a copy of mosquitto with a new modification time (WOTT_MQTT_MOSQUITTO),
#      which every entry of the layer carries: a layer the engine has never
#      seen, each time. Beside it, `demo` with that image current.
# The second part measures the fallback only where eclipse-mosquitto:2 is
# absent (it never removes that image) and nothing can be pulled. Run as
# root, alone: it moves wott-mqtt/mosquitto:<version>-local, and puts it
# back from /usr/sbin/mosquitto at the end.
source "$(dirname "$0")/common.sh"
require hyperfine docker mosquitto
build_release

TAG="wott-mqtt-bench/mosquitto:$$"
cleanup() { docker rmi "$TAG" >/dev/null 2>&1 || true; remove_scratch; }
trap cleanup EXIT
"$BIN" -q server image --tag "$TAG"

hyperfine -N --warmup 3 --runs 30 --export-markdown "$SCRATCH/current.md" \
    -n "wott-mqtt server image (current)" "$BIN -q server image --tag $TAG" \
    -n "docker image inspect" "docker image inspect $TAG"
cat "$SCRATCH/current.md"
echo

if docker image inspect eclipse-mosquitto:2 >/dev/null 2>&1; then
    echo "bench: eclipse-mosquitto:2 is here, so demo runs it: no fallback to measure" >&2
    exit 0
fi
LOCAL="$("$BIN" --json server image --dry-run | sed -n 's/^  "tag": "\(.*\)",$/\1/p')"
cp /usr/sbin/mosquitto "$SCRATCH/mosquitto"
echo 0 > "$SCRATCH/n"
# A new modification time for the copy: the next run builds a new image.
cat > "$SCRATCH/renew.sh" <<RENEW
#!/bin/sh
n=\$(cat "$SCRATCH/n"); echo \$((n + 1)) > "$SCRATCH/n"
touch -d @\$((1700000000 + n)) "$SCRATCH/mosquitto"
docker rmi $LOCAL >/dev/null 2>&1 || true
RENEW
chmod +x "$SCRATCH/renew.sh"
export WOTT_MQTT_MOSQUITTO="$SCRATCH/mosquitto"
hyperfine -N --runs 10 --export-markdown "$SCRATCH/demo.md" \
    --prepare "$SCRATCH/renew.sh" \
    -n "wott-mqtt demo, no Mosquitto image (pull fails, build, run)" "$BIN -q demo" \
    --prepare "true" \
    -n "wott-mqtt demo, local image current (pull fails, reuse, run)" "$BIN -q demo"
cat "$SCRATCH/demo.md"
unset WOTT_MQTT_MOSQUITTO
"$BIN" -q server image
