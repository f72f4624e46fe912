#!/usr/bin/env bash
# `hosts add` on a 200,000-line ad-block hosts file (6.4 MB) vs `cp` of that
# file, in one hyperfine run, then peak memory (max RSS) with GNU time.
# BENCH_SCRATCH chooses the disk; RUNS the number of runs. Never touches /etc/hosts.
source "$(dirname "$0")/common.sh"
require hyperfine awk /usr/bin/time
build_release
runs="${RUNS:-60}"
mkdir -p "$SCRATCH"
big="$SCRATCH/big.hosts" work="$SCRATCH/work.hosts" added="$SCRATCH/added.hosts" copy="$SCRATCH/copy.hosts"

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
} > "$big"
id=4853b630822946019393b16c5b710b9e.d.wott.local
cp "$big" "$added"
"$BIN" hosts add "$id" 10.0.0.9 --hosts-file "$added" > /dev/null
echo "$(wc -l < "$big") lines, $(stat -c %s "$big") bytes, on $(df -T "$SCRATCH" | awk 'NR==2 {print $2}'); load $(cut -d' ' -f1-3 /proc/loadavg)"

# Each `hosts add` starts from the original, written durably first so that its
# dirty pages are not flushed by our fsync. `dd conv=fsync` is `cp` made
# durable: the floor for an atomic edit (fsync the temp file, then the folder).
# "cp over a copy" replaces a durably written file of the same size, as the
# edit replaces the original: freeing the old blocks is part of both (see
# docs/performance.md, "Replacing a file frees the old one").
hyperfine -N --warmup 5 --runs "$runs" --export-markdown "$SCRATCH/hosts.md" \
    -n "hosts add (appends a line)" --prepare "dd if=$big of=$work bs=1M conv=fsync status=none" \
    "$BIN hosts add $id 10.0.0.9 --hosts-file $work" \
    -n "cp" --prepare "rm -f $copy" "cp $big $copy" \
    -n "cp over a copy (replaces it)" --prepare "dd if=$big of=$copy bs=1M conv=fsync status=none" "cp $big $copy" \
    -n "dd conv=fsync (durable cp)" --prepare "rm -f $copy" "dd if=$big of=$copy bs=1M conv=fsync status=none" \
    -n "hosts add (already there: no write)" --prepare "true" "$BIN hosts add $id 10.0.0.9 --hosts-file $added" \
    -n "hosts list" --prepare "true" "$BIN hosts list --hosts-file $big"
cat "$SCRATCH/hosts.md"

rss() { /usr/bin/time -f %M "$@" 2>&1 > /dev/null | tail -1; }
cp "$big" "$work"
add_kb=$(rss "$BIN" hosts add "$id" 10.0.0.9 --hosts-file "$work")
echo "max RSS: hosts add ${add_kb} KiB, hosts list $(rss "$BIN" hosts list --hosts-file "$big") KiB, cp $(rss cp "$big" "$copy") KiB"
awk -v kb="$add_kb" -v size="$(stat -c %s "$big")" \
    'BEGIN { printf "hosts add peak memory / file size: %.2f (limit 3)\n", kb * 1024 / size }'
