#!/usr/bin/env bash
# `acl allow` and `acl check` on a permissions.acl with 20,000 devices (60,002
# lines, 2.4 MB) vs `cp` of that file, in one hyperfine run, then peak memory
# (max RSS) with GNU time. BENCH_SCRATCH chooses the disk; RUNS the number of
# runs. Method and figures: docs/performance.md.
source "$(dirname "$0")/common.sh"
require hyperfine awk /usr/bin/time
build_release
runs="${RUNS:-60}"
mkdir -p "$SCRATCH"
big="$SCRATCH/big.acl" work="$SCRATCH/work.acl" copy="$SCRATCH/copy.acl"

# One block per device, as `acl allow` writes them; a fixed seed keeps runs comparable.
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
}' > "$big"
known=$(sed -n 2p "$big" | cut -d' ' -f2)
new=ffffffffffffffffffffffffffffffff.d.wott.local
echo "$(wc -l < "$big") lines, $(stat -c %s "$big") bytes, on $(df -T "$SCRATCH" | awk 'NR==2 {print $2}'); load $(cut -d' ' -f1-3 /proc/loadavg)"

# Each `acl allow` starts from the original, written durably first so that its
# dirty pages are not flushed by our fsync. `dd conv=fsync` is `cp` made
# durable: the floor for an atomic edit (fsync the temp file, then the folder).
# "cp over a copy" replaces a durably written file of the same size, as the
# edit replaces the original: freeing the old blocks is part of both (see
# docs/performance.md, "Replacing a file frees the old one").
restore="dd if=$big of=$work bs=1M conv=fsync status=none"
hyperfine -N --warmup 5 --runs "$runs" --export-markdown "$SCRATCH/acl.md" \
    -n "acl allow (new device: appends a block)" --prepare "$restore" \
    "$BIN acl allow $new wott/# --file $work" \
    -n "acl allow (known device: adds a line mid-file)" --prepare "$restore" \
    "$BIN acl allow $known wott/extra --file $work" \
    -n "cp" --prepare "rm -f $copy" "cp $big $copy" \
    -n "cp over a copy (replaces it)" --prepare "dd if=$big of=$copy bs=1M conv=fsync status=none" "cp $big $copy" \
    -n "dd conv=fsync (durable cp)" --prepare "rm -f $copy" "dd if=$big of=$copy bs=1M conv=fsync status=none" \
    -n "acl allow (already granted: no write)" --prepare "true" \
    "$BIN acl allow $known devices/$known/# --file $big" \
    -n "acl check" --prepare "true" "$BIN acl check $known devices/$known/x --file $big"
cat "$SCRATCH/acl.md"

rss() { /usr/bin/time -f %M "$@" 2>&1 > /dev/null | tail -1; }
cp "$big" "$work"
echo "max RSS: acl allow $(rss "$BIN" acl allow "$known" wott/extra --file "$work") KiB," \
    "acl check $(rss "$BIN" acl check "$known" "devices/$known/x" --file "$big") KiB," \
    "acl validate $(rss "$BIN" acl validate --file "$big") KiB, cp $(rss cp "$big" "$copy") KiB"
