#!/usr/bin/env bash
# Installs the Debian packages flare's build, tests and lab need, if missing.
# Idempotent: runs apt-get update only when something must be installed.
set -euo pipefail

PKGS=(build-essential cmake pkg-config clang clang-format
      libuv1-dev libsodium-dev nettle-dev libgnutls28-dev libngtcp2-dev libngtcp2-crypto-gnutls-dev
      libsecp256k1-dev libusrsctp-dev libwslay-dev gnutls-bin libprotobuf-c-dev protobuf-c-compiler
      libcmocka-dev libminiupnpc-dev iproute2 nftables conntrack miniupnpd-nftables nodejs npm chromium)

missing=()
for p in "${PKGS[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done
# The machine may ship node outside Debian's package; accept it.
if command -v node >/dev/null && command -v npm >/dev/null; then
    missing=("${missing[@]/nodejs/}")
    missing=("${missing[@]/npm/}")
fi
read -r -a missing <<<"${missing[*]}"
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "deps.sh: missing packages: ${missing[*]} (run as root to install them)" >&2
    exit 1
fi
echo "deps.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
