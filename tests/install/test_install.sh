#!/usr/bin/env bash
# The library as a consumer sees it: installs the build into a temporary
# prefix, checks that libflare.so exports only the public API (no flare__*
# internals, no generated protobuf code, no simulator) and libflare-sim.so
# only flare_sim_*, moves the prefix (flare.pc and the CMake package must be
# relocatable), then builds examples/ out of tree against it with
# pkg-config (examples/Makefile) and with CMake find_package (shared and
# static), and runs them on loopback. Skipped (77) in sanitizer and fuzz
# builds, whose libraries need the sanitizer runtime in every consumer.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
src=${FLARE_SOURCE_DIR:-$root}
bin=${FLARE_BINARY_DIR:-$root/build}
if grep -qE '^FLARE_(SANITIZE|FUZZ):BOOL=ON' "$bin/CMakeCache.txt" 2>/dev/null; then
    echo "skipped: sanitizer/fuzz build"
    exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; }

if ! cmake --install "$bin" --prefix "$tmp/staging" >"$tmp/install.log" 2>&1; then
    cat "$tmp/install.log"
    echo "FAIL cmake --install"
    exit 1
fi
ok "cmake --install into a temporary prefix"

# Relocatable: everything below must work from where the tree ends up.
mv "$tmp/staging" "$tmp/prefix"
prefix=$tmp/prefix
libdir=$(dirname "$(find "$prefix" -name libflare.so -print -quit)")
[ -n "$libdir" ] && [ -f "$libdir/libflare-sim.so" ] && ok "libflare.so and libflare-sim.so installed" ||
    { bad "libraries missing"; exit 1; }

# --- exported symbols --------------------------------------------------------
syms() { nm -D --defined-only "$1" | awk '{print $3}' | sed 's/@.*//' | sort -u; }
syms "$libdir/libflare.so" >"$tmp/flare.syms"
syms "$libdir/libflare-sim.so" >"$tmp/sim.syms"
n=$(grep -c . "$tmp/flare.syms")
internal=$(grep -E '__' "$tmp/flare.syms" | head -5)
[ -z "$internal" ] && ok "libflare.so: no flare__* / generated symbols ($n exported)" ||
    bad "libflare.so exports internals: $internal"
simsyms=$(grep -E '^flare_sim' "$tmp/flare.syms" | head -5)
[ -z "$simsyms" ] && ok "libflare.so: no simulator symbols" || bad "libflare.so exports $simsyms"
other=$(grep -vE '^(flare_[a-z]|FLARE_[A-Z])' "$tmp/flare.syms" | head -5)
[ -z "$other" ] && ok "libflare.so: every symbol is flare_* / FLARE_*" || bad "libflare.so exports $other"
for s in flare_host_new flare_uvio_new flare_version flare_strerror; do
    grep -qx "$s" "$tmp/flare.syms" || bad "libflare.so lacks $s"
done
notsim=$(grep -vE '^flare_sim_' "$tmp/sim.syms" | head -5)
[ -z "$notsim" ] && grep -qx flare_sim_new "$tmp/sim.syms" &&
    ok "libflare-sim.so: flare_sim_* only" || bad "libflare-sim.so exports: $notsim"

# --- pkg-config --------------------------------------------------------------
export PKG_CONFIG_PATH=$libdir/pkgconfig
export LD_LIBRARY_PATH=$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
inc=$(pkg-config --variable=includedir flare)
[ "$(cd "$inc" 2>/dev/null && pwd -P)" = "$(cd "$prefix/include" && pwd -P)" ] &&
    ok "flare.pc points at the moved prefix" || bad "flare.pc includedir is $inc"
pkg-config --print-requires flare | grep -qw libuv && ok "flare.pc: Requires libuv" ||
    bad "flare.pc lacks Requires: libuv"
[ "$(pkg-config --modversion flare)" = "$(pkg-config --modversion flare-sim)" ] &&
    ok "flare-sim.pc resolves" || bad "flare-sim.pc"
mkdir -p "$tmp/pc"
if make -s -C "$tmp/pc" -f "$src/examples/Makefile" VPATH="$src/examples" \
    >"$tmp/pc.log" 2>&1; then ok "examples built with pkg-config (Makefile)"; else
    cat "$tmp/pc.log"
    bad "examples with pkg-config"
fi
# The simulator library links on its own (shared, only the public API).
cat >"$tmp/sim.c" <<'C'
#include <flare/sim.h>
int main(void)
{
    flare_sim *s = flare_sim_new(1, NULL);
    int ok = s && flare_sim_now(s) == 0;
    flare_sim_del(s);
    return ok ? 0 : 1;
}
C
# shellcheck disable=SC2046
if cc -o "$tmp/sim" "$tmp/sim.c" $(pkg-config --cflags --libs flare-sim) 2>"$tmp/sim.log" &&
    "$tmp/sim"; then ok "a program links libflare-sim.so"; else
    cat "$tmp/sim.log"
    bad "libflare-sim consumer"
fi

# --- CMake find_package ------------------------------------------------------
for kind in shared static; do
    st=OFF
    [ $kind = static ] && st=ON
    if cmake -S "$src/examples" -B "$tmp/cm-$kind" -DCMAKE_PREFIX_PATH="$prefix" \
        -DFLARE_EXAMPLES_STATIC=$st >"$tmp/cm-$kind.log" 2>&1 &&
        cmake --build "$tmp/cm-$kind" -j2 >>"$tmp/cm-$kind.log" 2>&1; then
        ok "examples built with find_package(flare) ($kind)"
    else
        tail -30 "$tmp/cm-$kind.log"
        bad "examples with CMake ($kind)"
    fi
done
if [ -x "$tmp/cm-static/echo" ]; then
    ldd "$tmp/cm-static/echo" | grep -q libflare && bad "static echo links libflare.so" ||
        ok "static echo does not need libflare.so"
fi

# --- run them ------------------------------------------------------------------
run() { # run NAME BINARY REGEX... : exit 0 and a line matching each REGEX
    local name=$1 exe=$2 out rc re good=1
    shift 2
    out=$(timeout 30 "$exe" 2>&1)
    rc=$?
    for re in "$@"; do grep -qE "$re" <<<"$out" || good=0; done
    if [ $rc -eq 0 ] && [ $good -eq 1 ]; then ok "$name"; else
        echo "$out"
        bad "$name (exit $rc)"
    fi
}
run "echo (pkg-config build) echoes" "$tmp/pc/echo" 'got back "hello from flare" \(ok\)'
run "echo (CMake, shared)" "$tmp/cm-shared/echo" '\(ok\)'
run "echo (CMake, static)" "$tmp/cm-static/echo" '\(ok\)'
run "relay prints the relayed address" "$tmp/pc/relay" 'reachable at /ip4/127\.0\.0\.1/tcp/[0-9]+/p2p/[^/]+/p2p-circuit/p2p/'
run "holepunch reaches B via the relay and reports the punch" "$tmp/pc/holepunch" \
    'A reached B through the relay' '(DIRECT connection|no direct connection|no hole punch outcome)'

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
