# bash completion for flare (the libp2p node CLI); flags as in docs/cli.md.
# shellcheck shell=bash
_flare() {
    local cur prev cmd i
    COMPREPLY=()
    cur=${COMP_WORDS[COMP_CWORD]}
    prev=${COMP_WORDS[COMP_CWORD - 1]}
    local commands="id multiaddr listen dial ping relay autonat stun demo dht sim help"
    local global="-v --verbose -q --quiet -h --help --version"
    cmd=
    for ((i = 1; i < COMP_CWORD; i++)); do
        case ${COMP_WORDS[i]} in
        -*) ;;
        *) cmd=${COMP_WORDS[i]}; break ;;
        esac
    done
    if [ -z "$cmd" ]; then
        mapfile -t COMPREPLY < <(compgen -W "$commands $global" -- "$cur")
        return
    fi
    case $prev in
    --key | --message-file | --nat-mix) mapfile -t COMPREPLY < <(compgen -f -- "$cur"); return ;;
    --a-nat | --b-nat) mapfile -t COMPREPLY < <(compgen -W "eim sym fw" -- "$cur"); return ;;
    --dht-mode) mapfile -t COMPREPLY < <(compgen -W "auto client server" -- "$cur"); return ;;
    --security)
        if [ "$cmd" = sim ]; then mapfile -t COMPREPLY < <(compgen -W "noise plaintext" -- "$cur"); return; fi
        mapfile -t COMPREPLY < <(compgen -W "noise tls noise,tls tls,noise" -- "$cur"); return ;;
    --listen | --relay | --connect | --stun-listen | --bootstrap) mapfile -t COMPREPLY < <(compgen -W "/ip4/ /ip6/ /dns/" -- "$cur"); return ;;
    --seed | --echo | --message | --wait-holepunch | --autonat-boot-delay | --timeout | -c | --count | \
        --delay-ms | --relay-delay-ms | --deny-peer | --allow-peer | --deny-ip | --allow-ip | \
        --conn-low | --conn-high | --conn-grace | --keepalive | --relay-* | --max-* | --nodes | --pairs | \
        --public | --join-s | --dial-s) return ;;
    esac
    local common="--json -v --verbose -q --quiet -h --help"
    local ident="--key --seed"
    local policy="--deny-peer --allow-peer --deny-ip --allow-ip --conn-low --conn-high --conn-grace --keepalive --security"
    local rc="--max-conns --max-conns-inbound --max-conns-outbound --max-conns-per-ip
        --max-conns-per-subnet --max-conns-per-peer --max-handshakes --max-handshakes-per-ip
        --max-handshakes-per-subnet --max-streams-per-conn --max-streams-per-peer --max-mem
        --max-mem-per-peer --max-mem-per-conn"
    local node="--listen --connect --autonat-boot-delay --share-listen --allow-testnet --tls-cert
        --tls-key --tls-ca --stun-listen --no-stun-server --bootstrap --dht-mode --dht-disjoint-paths $ident $policy $rc"
    local flags
    case $cmd in
    id) flags="$ident" ;;
    multiaddr) flags="" ;;
    listen) flags="$node --echo --relay --auto-relay --no-holepunch --no-webrtc --allow-private-addrs --hard-punch --no-migrate --port-map --no-port-map --port-map-protocols" ;;
    dial) flags="$node --echo --message --message-file --echo-bytes --relay --auto-relay --no-holepunch --no-webrtc --allow-private-addrs --hard-punch --no-migrate --port-map --no-port-map --port-map-protocols --keep-alive --wait-holepunch" ;;
    ping) flags="$node -c --count" ;;
    relay) flags="$node --relay-data --relay-duration --relay-ttl --relay-max-reservations
        --relay-max-per-ip --relay-max-circuits --relay-circuits-per-peer" ;;
    autonat) flags="--listen $ident --timeout --allow-private" ;;
    stun) flags="--timeout" ;;
    dht)
        if [ "$cmd" = dht ] && [ "$COMP_CWORD" -ge 2 ] && [ "${COMP_WORDS[COMP_CWORD - 1]}" = dht ]; then
            mapfile -t COMPREPLY < <(compgen -W "find-peer find-providers provide get put" -- "$cur")
            return
        fi
        flags="--bootstrap --dht-mode --dht-disjoint-paths --listen --timeout --quorum $ident" ;;
    sim) flags="--nodes --seed --pairs --nat-mix --public --join-s --dial-s --conn-low --conn-high --security --threads" ;;
    demo) flags="--sim --a-nat --b-nat --delay-ms --relay-delay-ms --seed" ;;
    help) mapfile -t COMPREPLY < <(compgen -W "$commands" -- "$cur"); return ;;
    *) return ;;
    esac
    mapfile -t COMPREPLY < <(compgen -W "$flags $common" -- "$cur")
}
complete -F _flare flare
