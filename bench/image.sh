#!/usr/bin/env bash
# The local image (`server image`, the image policy's fallback):
#   1. `server image` when the image is current: the check that runs on
#      every offline `server up`/`demo` (target ≤ 0.2 s), beside
#      `docker image inspect` of the same tag;
#   2. `demo` on an engine with no Mosquitto image at all, the local image's
#      build included (target ≤ 15 s): each run starts with the local tag
#      removed, so the policy pulls (no registry answers here), builds and
#      runs it; beside `demo` with the image already built.
# The second part measures the fallback only where eclipse-mosquitto:2 is
# absent (it never removes that image) and nothing can be pulled. Run as
# root, alone: it removes and rebuilds wott-mqtt/mosquitto:<version>-local.
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
LOCAL="$("$BIN" --json server image | sed -n 's/^  "tag": "\(.*\)",$/\1/p')"
hyperfine -N --runs 10 --export-markdown "$SCRATCH/demo.md" \
    --prepare "docker rmi $LOCAL" \
    -n "wott-mqtt demo, no Mosquitto image (pull fails, build, run)" "$BIN -q demo" \
    --prepare "$BIN -q server image" \
    -n "wott-mqtt demo, local image current (pull fails, reuse, run)" "$BIN -q demo"
cat "$SCRATCH/demo.md"
