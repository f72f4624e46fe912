#!/usr/bin/env bash
# `wott-mqtt hosts add` on a 200,000-line ad-block hosts file (6.4 MB),
# side by side with `cp` of the same file, in one hyperfine run; then peak
# memory (max RSS) with GNU time. Results: docs/performance.md.
#
#   bench/hosts.sh                     # builds the release binary first
#   WOTT_MQTT_BIN=path/to/wott-mqtt bench/hosts.sh
#   RUNS=100 BENCH_DIR=/some/disk bench/hosts.sh
#
# Needs hyperfine, GNU time (apt: time) and awk. Writes only in BENCH_DIR
# (default: a new temp folder, removed afterwards); never /etc/hosts.
set -euo pipefail
cd "$(dirname "$0")/.."

for tool in hyperfine awk /usr/bin/time; do
    command -v "$tool" >/dev/null 2>&1 || {
        echo "bench/hosts.sh needs $tool (apt-get install hyperfine gawk time)" >&2
        exit 1
    }
done

if [ -n "${WOTT_MQTT_BIN:-}" ]; then
    bin=$WOTT_MQTT_BIN
else
    cargo build --release --locked --quiet
    bin=$PWD/target/release/wott-mqtt
fi
runs=${RUNS:-40}
if [ -n "${BENCH_DIR:-}" ]; then
    dir=$BENCH_DIR
    mkdir -p "$dir"
else
    dir=$(mktemp -d "${TMPDIR:-/tmp}/wott-hosts-bench.XXXXXX")
    trap 'rm -rf "$dir"' EXIT
fi

# The shape of public ad-block lists (StevenBlack/hosts); tests/hosts_corpus.rs
# generates the same bytes.
{
    printf '# Title: StevenBlack/hosts\n#\n# This hosts file is a merged collection of hosts from reputable sources,\n'
    printf '# with a dash of crowd sourcing via GitHub\n#\n'
    printf '127.0.0.1 localhost\n127.0.0.1 localhost.localdomain\n127.0.0.1 local\n'
    printf '255.255.255.255 broadcasthost\n::1 localhost\n::1 ip6-localhost\n::1 ip6-loopback\n'
    printf 'fe80::1%%lo0 localhost\nff00::0 ip6-localnet\nff00::0 ip6-mcastprefix\n'
    printf 'ff02::1 ip6-allnodes\nff02::2 ip6-allrouters\nff02::3 ip6-allhosts\n0.0.0.0 0.0.0.0\n'
    printf '# End of custom host records.\n# Start StevenBlack\n'
    awk 'BEGIN { for (i = 0; i < 200000; i++) printf "0.0.0.0 ads%06d.tracker%02d.com\n", i, i % 97 }'
} >"$dir/big"
size=$(stat -c %s "$dir/big")
lines=$(wc -l <"$dir/big")
id=4853b630822946019393b16c5b710b9e.d.wott.local
cp "$dir/big" "$dir/added"
"$bin" -q hosts add "$id" 10.0.0.9 --hosts-file "$dir/added" >/dev/null

echo "hosts file: $lines lines, $size bytes, in $dir ($(df -T "$dir" | awk 'NR==2 {print $2}'))"
echo "machine: $(nproc) CPUs, $(uname -sr), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo

# Each `hosts add` starts from the original file, written durably first so
# that its dirty pages are not flushed by our fsync. `cp` writes a new file
# each time; `dd conv=fsync` is the same copy made durable, which is what an
# atomic edit has to pay for (fsync of the temp file, then of the folder).
hyperfine -N --warmup 5 --runs "$runs" \
    --export-markdown "$dir/hosts-bench.md" \
    -n 'hosts add (appends a line)' \
    --prepare "dd if=$dir/big of=$dir/work bs=1M conv=fsync status=none" \
    "$bin hosts add $id 10.0.0.9 --hosts-file $dir/work" \
    -n 'cp' \
    --prepare "rm -f $dir/copy" \
    "cp $dir/big $dir/copy" \
    -n 'dd conv=fsync (durable cp)' \
    --prepare "rm -f $dir/copy" \
    "dd if=$dir/big of=$dir/copy bs=1M conv=fsync status=none" \
    -n 'hosts add (already there: no write)' \
    --prepare "true" \
    "$bin hosts add $id 10.0.0.9 --hosts-file $dir/added" \
    -n 'hosts list' \
    --prepare "true" \
    "$bin hosts list --hosts-file $dir/big"
echo
cat "$dir/hosts-bench.md"
echo

rss() { /usr/bin/time -f %M "$@" 2>&1 >/dev/null | tail -1; }
cp "$dir/big" "$dir/work"
add_kb=$(rss "$bin" hosts add "$id" 10.0.0.9 --hosts-file "$dir/work")
list_kb=$(rss "$bin" hosts list --hosts-file "$dir/big")
cp_kb=$(rss cp "$dir/big" "$dir/copy")
echo "max RSS: hosts add ${add_kb} KiB, hosts list ${list_kb} KiB, cp ${cp_kb} KiB"
awk -v kb="$add_kb" -v size="$size" \
    'BEGIN { printf "hosts add peak memory / file size: %.2f (limit 3)\n", kb * 1024 / size }'
