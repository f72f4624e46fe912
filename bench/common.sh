# Shared by the bench/*.sh scripts: a release build, a scratch dir, and a
# WoTT-layout identity made with openssl (so the benchmarks need no test code).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="$ROOT/target/release/wott-mqtt"
if [ -n "${BENCH_SCRATCH:-}" ]; then
    SCRATCH="$BENCH_SCRATCH"
    mkdir -p "$SCRATCH"
else
    SCRATCH="$(mktemp -d /tmp/wott-bench.XXXXXX)"
    OWN_SCRATCH=1
fi

# Removes the scratch dir this script made; scripts with their own EXIT trap call it.
remove_scratch() {
    if [ "${OWN_SCRATCH:-}" = 1 ] && [ "${KEEP_SCRATCH:-}" != 1 ]; then rm -rf "$SCRATCH"; fi
}
trap remove_scratch EXIT

build_release() {
    (cd "$ROOT" && cargo build --release --locked -q)
}

require() {
    for tool in "$@"; do
        command -v "$tool" >/dev/null || { echo "bench: $tool is required (apt-get install $tool)" >&2; exit 1; }
    done
}

# make_identity DIR CN [CA_DIR]: client.crt/client.key (EC P-256, PKCS#8, 0600)/ca.crt,
# CN and DNS SAN = CN, valid 7 days, like the WoTT agent's. Reuses CA_DIR's CA if given.
make_identity() {
    local dir="$1" cn="$2" ca_dir="${3:-$1}"
    mkdir -p "$dir" "$ca_dir"
    if [ ! -f "$ca_dir/ca.key" ]; then
        openssl ecparam -name prime256v1 -genkey -noout -out "$ca_dir/ca.key" 2>/dev/null
        openssl req -x509 -new -key "$ca_dir/ca.key" -subj "/CN=Bench CA" -days 30 -out "$ca_dir/ca.crt" 2>/dev/null
    fi
    [ "$ca_dir" = "$dir" ] || cp "$ca_dir/ca.crt" "$dir/ca.crt"
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$dir/client.key" 2>/dev/null
    chmod 600 "$dir/client.key"
    openssl req -new -key "$dir/client.key" -subj "/CN=$cn" -out "$dir/client.csr" 2>/dev/null
    printf 'subjectAltName=DNS:%s,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n' "$cn" > "$dir/ext.cnf"
    openssl x509 -req -in "$dir/client.csr" -CA "$ca_dir/ca.crt" -CAkey "$ca_dir/ca.key" \
        -CAcreateserial -days 7 -extfile "$dir/ext.cnf" -out "$dir/client.crt" 2>/dev/null
    rm -f "$dir/client.csr" "$dir/ext.cnf"
}

# The Mosquitto image for server/demo benchmarks, which pull nothing:
# BENCH_IMAGE, else eclipse-mosquitto:2, else the local image that
# `wott-mqtt server image` builds from this machine's Mosquitto (its tag).
find_image() {
    local candidate
    for candidate in ${BENCH_IMAGE:-} eclipse-mosquitto:2; do
        if docker image inspect "$candidate" >/dev/null 2>&1; then echo "$candidate"; return; fi
    done
    "$BIN" --json server image | sed -n 's/^  "tag": "\(.*\)",$/\1/p'
}
