#!/bin/sh
# The README's first step on a Debian machine (a Raspberry Pi too):
#   1. Debian's `mosquitto` package, only when this machine has no Mosquitto:
#      where no registry can be reached, `wott-mqtt demo`, `server up` and
#      `setup server` build their broker image from it (docs/server.md, "The
#      image"). Installing it starts Debian's own mosquitto.service (port
#      1883, this machine only); wott-mqtt runs its broker in a container, so
#      that service is stopped and disabled right away
#      (`sudo systemctl enable --now mosquitto` brings it back).
#   2. wott-mqtt itself: `cargo install --locked --path .`, as the user who
#      runs this script.
# Run it as root (no sudo needed) or as a user with sudo.
set -eu
cd "$(dirname "$0")"

say() { echo "install.sh: $*" >&2; }

has_mosquitto() {
    command -v mosquitto >/dev/null 2>&1 \
        || [ -x /usr/local/sbin/mosquitto ] || [ -x /usr/sbin/mosquitto ] || [ -x /sbin/mosquitto ]
}

if has_mosquitto; then
    say "Mosquitto is installed already; leaving it as it is"
elif ! command -v apt-get >/dev/null 2>&1; then
    say "no Mosquitto here and no apt-get to install it: install Mosquitto 2 yourself, or \`docker load\` eclipse-mosquitto:2, if this machine cannot pull"
else
    if [ "$(id -u)" = 0 ]; then
        SUDO=
    elif command -v sudo >/dev/null 2>&1; then
        SUDO=sudo
    else
        say "installing Debian's mosquitto package needs root: run ./install.sh as root, or install sudo"
        exit 1
    fi
    say "installing Debian's mosquitto package (the broker a local image is built from where no registry answers)"
    $SUDO apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mosquitto
    if [ -d /run/systemd/system ]; then
        $SUDO systemctl disable --now mosquitto.service >/dev/null 2>&1 || true
    elif [ -x /etc/init.d/mosquitto ]; then
        $SUDO /etc/init.d/mosquitto stop >/dev/null 2>&1 || true
        $SUDO update-rc.d mosquitto disable >/dev/null 2>&1 || true
    fi
    say "stopped and disabled Debian's mosquitto.service; wott-mqtt runs its own broker in a container"
fi

say "building and installing wott-mqtt (cargo install --locked --path .)"
cargo install --locked --path .
