#!/usr/bin/env bash
# `acl apply` of 10,000 devices x 2 grants, into a small ACL and into an
# existing 20,000-device ACL, vs a durable copy (dd conv=fsync) of the file it
# writes, in one hyperfine run; the same input again (no write) vs reading
# that file; peak memory; then, once, the loop of 10,000 `acl allow
# --no-reload` calls that `acl apply` replaces. BENCH_SCRATCH chooses the
# disk; RUNS the number of runs; LOOP the number of allow calls (0: skip).
# Method and figures: docs/performance.md.
source "$(dirname "$0")/common.sh"
require hyperfine awk /usr/bin/time
build_release
runs="${RUNS:-20}"
loop="${LOOP:-10000}"
mkdir -p "$SCRATCH"
small="$SCRATCH/small.acl" big="$SCRATCH/big.acl" work="$SCRATCH/work.acl" copy="$SCRATCH/copy.acl"

# A fixed seed keeps runs comparable. hex_id N: the Nth device of a stream.
ids() {
    awk -v n="$1" -v seed="$2" 'BEGIN {
        srand(seed)
        for (i = 0; i < n; i++) {
            id = ""
            for (j = 0; j < 32; j++) id = id sprintf("%x", int(rand() * 16))
            print id ".d.wott.local"
        }
    }'
}
ids 20000 1 > "$SCRATCH/old.ids"
ids 10000 2 > "$SCRATCH/new.ids"

# The small file: the managed broker's first permissions.acl and two devices.
{
    printf '# Mosquitto ACL for the broker managed by wott-mqtt.\n#\n# Manage the grants with wott-mqtt acl allow / revoke / apply.\n\n'
    head -2 "$SCRATCH/old.ids" | awk '{ printf "user %s\ntopic readwrite devices/%s/#\n\n", $1, $1 }'
} > "$small"
# The big file: one block per device, as `acl allow` writes them (bench/acl.sh's layout).
{
    echo "# WoTT devices"
    awk '{ printf "user %s\ntopic readwrite devices/%s/#\n\n", $1, $1 }' "$SCRATCH/old.ids"
    echo "pattern read broadcast/%u"
} > "$big"
# 10,000 new devices x 2 grants; and 10,000 of the big file's devices x 2
# grants, one of which they have (so each block gains a line mid-file).
awk '{ printf "%s devices/%s/# readwrite\n%s wott/temperature read\n", $1, $1, $1 }' "$SCRATCH/new.ids" > "$SCRATCH/new.grants"
head -10000 "$SCRATCH/old.ids" \
    | awk '{ printf "%s devices/%s/# readwrite\n%s wott/temperature read\n", $1, $1, $1 }' > "$SCRATCH/old.grants"

# The files `acl apply` writes, to copy and to read in the same run.
cp "$small" "$SCRATCH/small.result" && "$BIN" acl apply "$SCRATCH/new.grants" --no-reload -q --file "$SCRATCH/small.result" > /dev/null
cp "$big" "$SCRATCH/big.result" && "$BIN" acl apply "$SCRATCH/old.grants" --no-reload -q --file "$SCRATCH/big.result" > /dev/null
for f in small big; do
    echo "$f.acl: $(wc -l < "$SCRATCH/$f.acl") lines, $(stat -c %s "$SCRATCH/$f.acl") bytes; after apply: $(wc -l < "$SCRATCH/$f.result") lines, $(stat -c %s "$SCRATCH/$f.result") bytes"
done
echo "input: 20,000 grants for 10,000 devices, $(stat -c %s "$SCRATCH/new.grants") bytes; on $(df -T "$SCRATCH" | awk 'NR==2 {print $2}'); load $(cut -d' ' -f1-3 /proc/loadavg)"

# Each `acl apply` starts from the original, written durably first so that
# its dirty pages are not flushed by our fsync (as in bench/acl.sh); the
# durable copy of the file it writes is the floor of an atomic write, and
# "over a copy" also pays for freeing the replaced file, as the edit does.
restore() { echo "dd if=$1 of=$work bs=1M conv=fsync status=none"; }
hyperfine -N --warmup 3 --runs "$runs" --export-markdown "$SCRATCH/apply.md" \
    -n "acl apply, 10,000 new devices x 2 grants, small file" --prepare "$(restore "$small")" \
    "$BIN acl apply $SCRATCH/new.grants --no-reload --file $work" \
    -n "dd conv=fsync of that result (durable cp)" --prepare "rm -f $copy" \
    "dd if=$SCRATCH/small.result of=$copy bs=1M conv=fsync status=none" \
    -n "acl apply, 10,000 of 20,000 devices x 2 grants (+1 line each)" --prepare "$(restore "$big")" \
    "$BIN acl apply $SCRATCH/old.grants --no-reload --file $work" \
    -n "dd conv=fsync of that result (durable cp)" --prepare "rm -f $copy" \
    "dd if=$SCRATCH/big.result of=$copy bs=1M conv=fsync status=none" \
    -n "dd conv=fsync of that result over a copy" --prepare "dd if=$big of=$copy bs=1M conv=fsync status=none" \
    "dd if=$SCRATCH/big.result of=$copy bs=1M conv=fsync status=none" \
    -n "acl apply again, small file result (no write)" --prepare "true" \
    "$BIN acl apply $SCRATCH/new.grants --no-reload --file $SCRATCH/small.result" \
    -n "cat of that file" --prepare "true" "cat $SCRATCH/small.result" \
    -n "acl apply again, 20,000-device result (no write)" --prepare "true" \
    "$BIN acl apply $SCRATCH/old.grants --no-reload --file $SCRATCH/big.result" \
    -n "cat of that file" --prepare "true" "cat $SCRATCH/big.result"
cat "$SCRATCH/apply.md"

rss() { /usr/bin/time -f %M "$@" 2>&1 > /dev/null | tail -1; }
cp "$big" "$work"
echo "max RSS: acl apply into the 20,000-device file $(rss "$BIN" acl apply "$SCRATCH/old.grants" --no-reload --file "$work") KiB," \
    "again (no write) $(rss "$BIN" acl apply "$SCRATCH/old.grants" --no-reload --file "$work") KiB," \
    "cat $(rss cat "$work") KiB"

# The loop it replaces: one `acl allow` per device (its first grant), once.
if [ "$loop" -gt 0 ]; then
    cp "$small" "$work"
    head -"$loop" "$SCRATCH/new.ids" > "$SCRATCH/loop.ids"
    start=$(date +%s.%N)
    while read -r id; do
        "$BIN" acl allow "$id" "devices/$id/#" --no-reload -q --file "$work" > /dev/null
    done < "$SCRATCH/loop.ids"
    end=$(date +%s.%N)
    echo "loop of $loop acl allow --no-reload calls (one grant each) into the small file: $(echo "$end - $start" | bc) s"
fi
