#!/usr/bin/env bash
# Benchmark: `acl allow` and `acl check` on a permissions.acl with 20,000
# devices (60,002 lines, 2.4 MB), side by side with `cp` of the same file in
# the same hyperfine run. Method and figures: docs/performance.md.
#
#   bench/acl.sh                      # prints hyperfine's table
#   BENCH_MARKDOWN=out.md bench/acl.sh
set -euo pipefail
cd "$(dirname "$0")/.."

command -v hyperfine >/dev/null || { echo "bench/acl.sh needs hyperfine (apt-get install hyperfine)" >&2; exit 2; }
cargo build --release --locked --quiet
bin=$PWD/target/release/wott-mqtt
markdown=${BENCH_MARKDOWN:+$(realpath -m "$BENCH_MARKDOWN")}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

# One block per device, like `acl allow` writes them; a fixed seed keeps runs comparable.
awk 'BEGIN {
    srand(1)
    print "# WoTT devices"
    for (i = 0; i < 20000; i++) {
        id = ""
        for (j = 0; j < 32; j++) id = id sprintf("%x", int(rand() * 16))
        id = id ".d.wott.local"
        printf "user %s\ntopic readwrite devices/%s/#\n\n", id, id
    }
    print "pattern read broadcast/%u"
}' > big.acl
known=$(sed -n 2p big.acl | cut -d' ' -f2)
new=ffffffffffffffffffffffffffffffff.d.wott.local
echo "$(wc -l < big.acl) lines, $(wc -c < big.acl) bytes, on $(df -T . | awk 'NR==2 {print $2}')" >&2

# --prepare restores the file before every run, so each `acl allow` really writes.
hyperfine -N --warmup 3 --min-runs 40 --prepare 'cp big.acl work.acl' \
    ${markdown:+--export-markdown "$markdown"} \
    -n 'cp (same file)' 'cp big.acl copy.acl' \
    -n 'cp + fsync (dd conv=fsync)' 'dd if=big.acl of=copy.acl bs=1M conv=fsync status=none' \
    -n 'acl allow, new device' "$bin acl allow $new wott/# --file work.acl" \
    -n 'acl allow, known device' "$bin acl allow $known wott/extra --file work.acl" \
    -n 'acl allow, already granted (no write)' "$bin acl allow $known devices/$known/# --file work.acl" \
    -n 'acl check' "$bin acl check $known devices/$known/x --file big.acl" \
    -n 'acl validate' "$bin acl validate --file big.acl"
