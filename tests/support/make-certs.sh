# shellcheck shell=bash
# make_test_certs DIR: a test CA (DIR/ca.pem, DIR/ca.key) and a server
# certificate it signs for localhost, 127.0.0.1 and ::1 (DIR/cert.pem,
# DIR/key.pem), ECDSA P-256, valid two days, made with certtool (gnutls-bin).
# Sourced by the WebSocket tests. Returns non-zero if certtool is missing or
# fails.
make_test_certs() {
    local d=$1
    command -v certtool >/dev/null || return 1
    certtool --generate-privkey --key-type ecdsa --outfile "$d/ca.key" 2>/dev/null || return 1
    printf 'cn = "flare test CA"\nca\ncert_signing_key\nexpiration_days = 2\n' >"$d/ca.tmpl"
    certtool --generate-self-signed --load-privkey "$d/ca.key" --template "$d/ca.tmpl" \
        --outfile "$d/ca.pem" 2>/dev/null || return 1
    certtool --generate-privkey --key-type ecdsa --outfile "$d/key.pem" 2>/dev/null || return 1
    printf '%s\n' 'cn = "localhost"' 'dns_name = "localhost"' 'ip_address = "127.0.0.1"' \
        'ip_address = "::1"' tls_www_server signing_key 'expiration_days = 2' >"$d/srv.tmpl"
    certtool --generate-certificate --load-privkey "$d/key.pem" --load-ca-certificate "$d/ca.pem" \
        --load-ca-privkey "$d/ca.key" --template "$d/srv.tmpl" --outfile "$d/cert.pem" \
        2>/dev/null || return 1
    [ -s "$d/cert.pem" ]
}
