#!/usr/bin/env bash
# Builds keygate from this checkout and installs the binary; optionally writes a systemd
# user unit. Safe to run again: it replaces the binary (and the unit) in place.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: ./install.sh [--prefix DIR] [--systemd] [--help]

Builds keygate with `cargo build --release --locked` and installs the binary.

Options:
  --prefix DIR  Install to DIR/bin/keygate (default: ~/.local, so ~/.local/bin/keygate).
  --systemd     Also write the systemd user unit
                ~/.config/systemd/user/keygate.service (it is not enabled or started;
                the command to do that is printed).
  --help        Show this help.

Running it again rebuilds and replaces the installed binary.
EOF
}

say() { printf '==> %s\n' "$*"; }
warn() { printf 'warning: %s\n' "$*" >&2; }
die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

prefix="$HOME/.local"
systemd=false
while (($# > 0)); do
    case "$1" in
    --prefix)
        (($# >= 2)) || die "--prefix needs a directory"
        prefix="$2"
        shift 2
        ;;
    --prefix=*)
        prefix="${1#--prefix=}"
        shift
        ;;
    --systemd)
        systemd=true
        shift
        ;;
    -h | --help)
        usage
        exit 0
        ;;
    *)
        usage >&2
        die "unknown argument: $1"
        ;;
    esac
done
[[ -n "$prefix" ]] || die "--prefix needs a directory"
# Relative to where the script was run from, not to the checkout it builds in.
[[ "$prefix" == /* ]] || prefix="$PWD/$prefix"

command -v cargo >/dev/null 2>&1 ||
    die "cargo not found; install the Rust toolchain from https://rustup.rs first"

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$repo"

say "Building keygate (cargo build --release --locked) in $repo"
# Cargo reports where it put the binary, wherever the target directory is configured.
built="$(cargo build --release --locked --message-format=json-render-diagnostics |
    sed -n 's/.*"executable":"\([^"]*\/keygate\)".*/\1/p' | tail -n 1)"
[[ -n "$built" && -x "$built" ]] || die "the build did not produce a keygate binary"
say "Built $built ($("$built" version))"

mkdir -p "$prefix/bin"
bindir="$(cd "$prefix/bin" && pwd)"
target="$bindir/keygate"
if [[ -e "$target" ]]; then
    say "Replacing $target"
else
    say "Installing to $target"
fi
install -m 0755 "$built" "$target"
say "Installed $("$target" version) at $target"

if [[ ":$PATH:" != *":$bindir:"* ]]; then
    warn "$bindir is not on your PATH; add it, for example:"
    warn "  echo 'export PATH=\"$bindir:\$PATH\"' >> ~/.bashrc"
fi

if [[ "$systemd" == true ]]; then
    unit_dir="${XDG_CONFIG_HOME:-$HOME/.config}/systemd/user"
    unit="$unit_dir/keygate.service"
    new_unit="$(
        cat <<EOF
# Written by keygate's install.sh; running it again replaces this file.
# Configure keygate with an override that survives reinstalls:
#   systemctl --user edit keygate
# and add, under [Service], lines such as:
#   Environment=KEYGATE_LISTEN=127.0.0.1:3000
#   Environment=KEYGATE_DB=%h/.local/share/keygate/keygate.db
[Unit]
Description=keygate API authentication server

[Service]
ExecStart=$target serve
Restart=on-failure
# Room for many connections: keygate caps them below this limit.
LimitNOFILE=65536

[Install]
WantedBy=default.target
EOF
    )"
    mkdir -p "$unit_dir"
    if [[ -f "$unit" ]] && [[ "$(cat "$unit")" == "$new_unit" ]]; then
        say "The systemd unit $unit is already up to date"
    else
        if [[ -f "$unit" ]]; then
            cp "$unit" "$unit.bak"
            say "Saved the previous unit to $unit.bak"
        fi
        printf '%s\n' "$new_unit" >"$unit"
        say "Wrote the systemd user unit $unit"
    fi
    say "To start keygate now and at every login, run:"
    printf '    systemctl --user daemon-reload && systemctl --user enable --now keygate\n'
    say "To keep it running after you log out, also run: loginctl enable-linger ${USER:-$(id -un)}"
fi

say "Done. Start the server with: $target serve"
