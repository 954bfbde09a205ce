#!/usr/bin/env bash
# The man page and bash completion: docs/flare.1 is what scripts/gen-man.py
# makes of docs/cli.md today and renders without warnings; the completion
# offers every command and every flag docs/cli.md and `COMMAND --help`
# mention; CMake installs both.
source "$(dirname "$0")/lib.sh"
version=$(sed -n 's/^#define FLARE_VERSION *"\(.*\)"/\1/p' "$root/include/flare/version.h")
if diff -u "$root/docs/flare.1" <(python3 "$root/scripts/gen-man.py" "$root/docs/cli.md" "$version") >/dev/null; then
    ok "docs/flare.1 is current (scripts/gen-man.py docs/cli.md $version)"
else
    bad "docs/flare.1 is stale: run scripts/gen-man.py docs/cli.md $version > docs/flare.1"
fi
if command -v man >/dev/null; then
    warn=$(LC_ALL=C.UTF-8 MANWIDTH=100 man --warnings -l "$root/docs/flare.1" 2>&1 >/dev/null)
    page=$(LC_ALL=C.UTF-8 MANWIDTH=100 man -l "$root/docs/flare.1" 2>/dev/null)
    [ -z "$warn" ] && grep -q "^EXIT STATUS" <<<"$page" && grep -q "holepunch_step" <<<"$page" &&
        ok "man renders without warnings (EXIT STATUS, JSON EVENTS)" || bad "man: $warn"
fi
comp=$root/tools/completion/flare.bash
bash -n "$comp" && ok "completion parses" || bad "completion syntax"
# Every flag the docs or the help texts name is offered by the completion.
flags=$( (cat "$root/docs/cli.md"; for c in id multiaddr listen dial ping relay autonat stun demo dht sim; do
    "$flare" "$c" --help; done) | sed 's/--[a-z-]*-\*//g' | grep -oE -- '(^|[^a-z-])--[a-z][a-z0-9-]*[a-z0-9]' | sed 's/^[^-]*//' | sort -u)
missing=""
for f in $flags; do grep -qE -- "(^|[ \"])$f([ \"]|$)" "$comp" || missing="$missing $f"; done
[ -z "$missing" ] && ok "completion knows all $(wc -w <<<"$flags") flags" || bad "completion lacks:$missing"
complete_words() { # WORDS...: what the completion offers for the last word
    bash -c 'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _flare; echo "${COMPREPLY[*]}"' \
        _ "$comp" "$@"
}
out=$(complete_words flare "")
for c in id multiaddr listen dial ping relay autonat stun demo dht sim; do
    grep -qw "$c" <<<"$out" || bad "completion lacks command $c"
done
[[ $(complete_words flare dial --wa) == "--wait-holepunch" ]] && ok "flare dial --wa<TAB>" || bad "dial --wa"
[[ $(complete_words flare demo --a-nat s) == "sym" ]] && ok "flare demo --a-nat s<TAB>" || bad "--a-nat s"
[[ $(complete_words flare -v rel) == "relay" ]] && ok "flare -v rel<TAB>" || bad "-v rel"
inst=$bin/cmake_install.cmake
if [ -f "$inst" ]; then
    grep -q "man1.*flare.1\|flare.1.*man1\|/man1\"" "$inst" && grep -q "bash-completion/completions" "$inst" &&
        ok "install rules for the man page and the completion" || bad "no install rules in $inst"
fi
finish
