#!/usr/bin/env bash
# Every figure in docs/performance.md, side by side with the peer tools, in
# one command: each bench/<area>.sh in turn, on one release build, with a
# header that records the machine. The tables go to stdout and to
# target/bench/results-<time>.md.
#
#   sudo bench/all.sh                 # all areas
#   sudo bench/all.sh whoami check    # some
#
# Peers: openssl (whoami), cp and dd conv=fsync (acl, apply, hosts), the loop
# of `acl allow` calls `acl apply` replaces (apply), mosquitto_sub and Python
# Paho (check), docker run + mosquitto_sub polling (server, demo), an
# inotifywait loop running `server reload` and `docker restart` (watch).
# Installs missing Debian packages when run as root; Paho goes into a venv
# outside the repository (see bench/check.sh). Nothing is pulled from a
# registry: server and demo use eclipse-mosquitto:2 when it is here, else the
# local image `wott-mqtt server image` builds from this machine's Mosquitto.
set -euo pipefail
cd "$(dirname "$0")/.."

areas=("$@")
[ ${#areas[@]} -gt 0 ] || areas=(whoami acl apply hosts check server demo image watch)

need=()
for tool in hyperfine bc openssl mosquitto mosquitto_sub inotifywait; do
    command -v "$tool" >/dev/null || need+=("$tool")
done
[ -x /usr/bin/time ] || need+=(time)
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
if [ ${#need[@]} -gt 0 ]; then
    pkgs=()
    for tool in "${need[@]}"; do
        case "$tool" in
            mosquitto_sub) pkgs+=(mosquitto-clients) ;;
            inotifywait) pkgs+=(inotify-tools) ;;
            *) pkgs+=("$tool") ;;
        esac
    done
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${pkgs[@]}"
    else
        echo "bench: missing ${pkgs[*]}; install them (sudo apt-get install ${pkgs[*]}) or run as root" >&2
        exit 1
    fi
fi

cargo build --release --locked -q

mkdir -p target/bench
out="target/bench/results-$(date -u +%Y%m%dT%H%M%SZ).md"
{
    echo "# wott-mqtt benchmarks, $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    echo "- commit $(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown); $(target/release/wott-mqtt --version)"
    echo "- $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(free -g | awk '/Mem:/ {print $2}') GiB RAM, $(uname -sr)"
    echo "- load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "- $(hyperfine --version), $(mosquitto -h 2>&1 | head -1)"
    echo
} | tee "$out"

for area in "${areas[@]}"; do
    script="bench/$area.sh"
    [ -x "$script" ] || { echo "bench: no $script" >&2; exit 1; }
    { echo "## $area"; echo; } | tee -a "$out"
    "$script" 2>&1 | tee -a "$out"
    echo | tee -a "$out"
done
echo "results: $out" >&2
