#!/usr/bin/env bash
# Builds the ren3-issuer and ren3-client Debian packages, installs them,
# checks their units (systemd-analyze verify, and security with an exposure
# of at most 2.5, or a reason in the unit; the backup timer installed and
# not enabled), runs the installed binaries, and runs each service's
# ExecStart by hand as the unit's user for a smoke test: systemd need not
# be PID 1. The backup service's backup is then restored into a scratch
# store. Both packages are purged on exit, whatever happened, so the
# machine is left as it was.
#
# Run as root on Debian from anywhere: packaging/check.sh. .ci/run calls
# it. The client is pinned to a throwaway root made for this run, never the
# TEST-ONLY one.
#
# REN3_PACKAGE_PROFILE names the Cargo profile the binaries are built with:
# `release` by default, as the README builds the packages it ships. CI
# sets `package-check` (Cargo.toml: release, unoptimised), which builds
# in less time the same packages, with the same files, units and debug
# assertions off.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS

MAX_EXPOSURE=2.5
PACKAGES=(ren3-issuer ren3-client)
SERVICES=(ren3-issuer.service ren3-issuer-backup.service ren3-client.service)
profile=${REN3_PACKAGE_PROFILE:-release}
target=${CARGO_TARGET_DIR:-target}/$profile

if [ "$(id -u)" != 0 ]; then
    echo "packaging/check.sh: run as root (it installs and purges packages)" >&2
    exit 1
fi
# What the exit trap removes must be this run's own.
for package in "${PACKAGES[@]}"; do
    if dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q installed ||
        [ -e "/var/lib/$package" ] || getent passwd "$package" >/dev/null; then
        echo "packaging/check.sh: $package is already on this machine (package, /var/lib/$package" \
            "or user); this check would purge it, so it stops here" >&2
        exit 1
    fi
done

tmp=$(mktemp -d)
servers=()
installed=no
cleanup() {
    local status=$?
    for pid in "${servers[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [ "$installed" = yes ]; then
        dpkg --purge "${PACKAGES[@]}" >/dev/null || status=1
        # The state the smoke test made, which purge keeps (it keeps data).
        rm -rf /var/lib/ren3-issuer /var/lib/ren3-client
    fi
    rm -rf "$tmp"
    exit "$status"
}
trap cleanup EXIT
trap 'echo "packaging/check.sh: line $LINENO failed: $BASH_COMMAND" >&2' ERR

step() { echo "-- $*"; }

step "tools"
command -v cargo-deb >/dev/null || cargo install cargo-deb --locked
command -v dpkg-shlibdeps >/dev/null ||
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends dpkg-dev

step "a throwaway root, and $profile binaries (the client pinned to that root)"
# Built one package at a time: together, cargo would unify features and
# give the client ren3-shared's `signing`.
cargo build --profile "$profile" --locked -p ren3-issuer
root_passphrase="packaging check $$ $RANDOM$RANDOM"
REN3_ROOT_PASSPHRASE=$root_passphrase \
    "$target/ren3-issuer" --db "$tmp/throwaway.db" init --root-dir "$tmp/root" >/dev/null 2>&1
REN3_TRUST_ROOT="$tmp/root/root.pub" cargo build --profile "$profile" --locked -p ren3-client-cli
fingerprint=$(sed -n 's/^# Fingerprint: //p' "$tmp/root/root.pub")

step "completions and man pages, from the binaries"
for bin in ren3-issuer ren3-client; do
    out="$target/assets/$bin"
    rm -rf "$out"
    mkdir -p "$out/bash" "$out/zsh" "$out/fish" "$out/man"
    "$target/$bin" completions bash >"$out/bash/$bin"
    "$target/$bin" completions zsh >"$out/zsh/_$bin"
    "$target/$bin" completions fish >"$out/fish/$bin.fish"
    "$target/$bin" man --out-dir "$out/man" >/dev/null 2>&1
    gzip -9n "$out"/man/*.1
done

step "packages"
mkdir "$tmp/debs"
cargo deb --no-build --profile "$profile" -p ren3-issuer -o "$tmp/debs/" >/dev/null
cargo deb --no-build --profile "$profile" -p ren3-client-cli -o "$tmp/debs/" >/dev/null
ls "$tmp/debs"

step "dpkg -i"
installed=yes
dpkg -i "$tmp"/debs/*.deb >/dev/null
for package in "${PACKAGES[@]}"; do
    getent passwd "$package" >/dev/null
    [ "$(stat -c '%a %U' "/var/lib/$package")" = "700 $package" ]
    for file in "/usr/share/bash-completion/completions/$package" \
        "/usr/share/zsh/vendor-completions/_$package" \
        "/usr/share/fish/vendor_completions.d/$package.fish" \
        "/usr/share/man/man1/$package.1.gz"; do
        [ -s "$file" ] || { echo "$package did not install $file" >&2; exit 1; }
    done
done
[ -f /etc/ren3/issuer.toml ] && [ -f /etc/ren3/client.env ]

step "the units"
for service in "${SERVICES[@]}"; do
    unit=/usr/lib/systemd/system/$service
    systemd-analyze verify "$unit"
    exposure=$(systemd-analyze security --offline=yes "$unit" 2>/dev/null |
        sed -n 's/^→ Overall exposure level for .*: \([0-9.]*\) .*/\1/p')
    [ -n "$exposure" ] || { echo "no exposure score for $unit" >&2; exit 1; }
    echo "$service: exposure $exposure"
    if awk -v e="$exposure" -v max="$MAX_EXPOSURE" 'BEGIN { exit !(e > max) }' &&
        ! grep -q '^# Exposure above 2.5:' "$unit"; then
        echo "$unit: exposure $exposure is above $MAX_EXPOSURE, and the unit gives no" \
            "'# Exposure above 2.5:' reason" >&2
        exit 1
    fi
done
systemd-analyze verify /usr/lib/systemd/system/ren3-issuer-backup.timer
# Installed disabled, as the console: it backs up a store the operator
# makes first.
if [ -n "$(find /etc/systemd/system -name 'ren3-*' -print -quit)" ]; then
    echo "a unit was enabled at install:" /etc/systemd/system/*/ren3-* >&2
    exit 1
fi

step "the installed binaries"
/usr/bin/ren3-issuer --version
/usr/bin/ren3-issuer --help >/dev/null
/usr/bin/ren3-client --version | tee "$tmp/client-version"
grep -q "trust root $fingerprint, pinned" "$tmp/client-version"
/usr/bin/ren3-client --help >/dev/null
man -P cat ren3-issuer-serve 2>/dev/null | grep -q -- --listen

# `KEY` of the [Service] section of the installed service $1, one a line.
unit_values() {
    sed -n "s/^$2=//p" "/usr/lib/systemd/system/$1"
}

# Becomes the service $1's ExecStart, run as the unit's user, with the
# unit's environment, working directory and umask, then the variables
# given after it (NAME=value). Run it in a subshell.
exec_as_unit() {
    local service=$1
    shift
    local user directory umask
    user=$(unit_values "$service" User)
    directory=$(unit_values "$service" WorkingDirectory)
    umask=$(unit_values "$service" UMask)
    local -a command environment=()
    read -r -a command <<<"$(unit_values "$service" ExecStart)"
    mapfile -t environment < <(unit_values "$service" Environment)
    local file
    for file in $(unit_values "$service" EnvironmentFile); do
        mapfile -t -O "${#environment[@]}" environment < <(grep -E '^[A-Za-z_][A-Za-z0-9_]*=' "$file")
    done
    cd "$directory"
    umask "$umask"
    # setpriv execs: the process started here is the service itself.
    exec setpriv --reuid="$user" --regid="$user" --init-groups --no-new-privs \
        env -i PATH=/usr/bin:/bin HOME="$directory" "${environment[@]}" "$@" "${command[@]}"
}

# Starts $1's ExecStart as exec_as_unit does (the package's service);
# waits for its `listening on` line and sets `address`.
start_as_unit() {
    local package=$1
    shift
    (exec_as_unit "$package.service" "$@") >"$tmp/$package.out" 2>"$tmp/$package.err" &
    servers+=("$!")
    local _
    for _ in $(seq 100); do
        if grep -q '^listening on http://' "$tmp/$package.out"; then
            address=$(sed -n 's|^listening on http://||p' "$tmp/$package.out")
            return
        fi
        if ! kill -0 "$!" 2>/dev/null; then
            break
        fi
        sleep 0.1
    done
    echo "$package did not start:" >&2
    cat "$tmp/$package.err" >&2
    return 1
}

# Stops the last server started with SIGTERM, as systemd does, and expects
# a clean exit.
stop_last() {
    local pid=${servers[-1]}
    kill -TERM "$pid"
    wait "$pid"
    unset 'servers[-1]'
}

# Nothing in a state directory is readable by anyone but its owner.
owner_only() {
    local loose
    loose=$(find "/var/lib/$1" -perm /077 ! -type l)
    [ -z "$loose" ] || { echo "not owner-only: $loose" >&2; exit 1; }
}

# Both listen on port 0 rather than their default ports, which another
# program on a CI machine may hold.
step "ren3-issuer.service's ExecStart as ren3-issuer"
# The README's manual step: the store, from the (here throwaway) root, made
# as root and handed to the service's user.
REN3_ROOT_PASSPHRASE=$root_passphrase REN3_ISSUER_DB=/var/lib/ren3-issuer/ren3-issuer.db \
    /usr/bin/ren3-issuer init --root-dir "$tmp/root" >/dev/null 2>&1
chown -R ren3-issuer:ren3-issuer /var/lib/ren3-issuer
as_issuer() {
    runuser -u ren3-issuer -- env REN3_ISSUER_DB=/var/lib/ren3-issuer/ren3-issuer.db \
        /usr/bin/ren3-issuer "$@"
}
key=$(as_issuer license create --customer "Packaging check" --features ingest)
device=$(as_issuer device add --license "$key" --label "packaging check")
start_as_unit ren3-issuer REN3_ISSUER_LISTEN=127.0.0.1:0
curl -fsS "http://$address/login" | grep -q '<form'
stop_last
owner_only ren3-issuer

step "ren3-issuer-backup.service's ExecStart as ren3-issuer, then the backup restored"
# The backups directory is made by the command here (0700); under systemd,
# StateDirectory= makes it first.
(exec_as_unit ren3-issuer-backup.service) >"$tmp/backup.out" 2>"$tmp/backup.err" ||
    { cat "$tmp/backup.err" >&2; exit 1; }
cat "$tmp/backup.out"
backup=$(sed -n 's/^backup \(.*\): [0-9]* bytes, integrity ok, .*/\1/p' "$tmp/backup.out")
[[ $backup == /var/lib/ren3-issuer/backups/ren3-issuer-????????T??????Z.db ]] ||
    { echo "unexpected backup: $(cat "$tmp/backup.out")" >&2; exit 1; }
[ "$(stat -c '%a %U' /var/lib/ren3-issuer/backups)" = "700 ren3-issuer" ]
[ "$(stat -c '%a %U' "$backup")" = "600 ren3-issuer" ]
owner_only ren3-issuer
# Restored as the README says, into a scratch store: the license made
# above is there, and the audit log verifies with the restore at its end.
restored="$tmp/restored/ren3-issuer.db"
install -d -m 0700 "$tmp/restored"
/usr/bin/ren3-issuer --db "$restored" restore "$backup" >/dev/null 2>"$tmp/restore.err" ||
    { cat "$tmp/restore.err" >&2; exit 1; }
/usr/bin/ren3-issuer --db "$restored" license show "$key" >/dev/null
/usr/bin/ren3-issuer --db "$restored" audit verify >/dev/null 2>"$tmp/verify.err" ||
    { cat "$tmp/verify.err" >&2; exit 1; }

step "ren3-client.service's ExecStart as ren3-client"
start_as_unit ren3-client client_device_id="$device" listen_addr=127.0.0.1:0
curl -fsS "http://$address/license" >"$tmp/license.json"
grep -q "\"offlineLicensing\":true.*\"clientDeviceId\":\"$device\"" "$tmp/license.json"
/usr/bin/ren3-client status --url "http://$address" >/dev/null || [ $? = 4 ]
stop_last
[ -s /var/lib/ren3-client/license.db ]
owner_only ren3-client

echo "packaging check passed in $((SECONDS - started)) s"
