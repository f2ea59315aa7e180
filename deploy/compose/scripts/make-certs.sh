#!/bin/sh
# Make the private CA and the certificate Traefik serves, with mkcert, under deploy/compose/certs/:
#   ca/rootCA.pem, ca/rootCA-key.pem  the CA (the key never leaves this folder; no container mounts it)
#   rootCA.pem                        the CA certificate every container trusts
#   ca-bundle.pem                     this host's public CAs plus rootCA.pem, for SSL_CERT_FILE (authentik)
#   tls.pem, tls-key.pem              <BASE_DOMAIN> and *.<BASE_DOMAIN>, served by Traefik
# BASE_DOMAIN comes from the environment or from ./.env. Run again to renew; the CA is kept.
set -eu
cd "$(dirname "$0")/.."
if [ -z "${BASE_DOMAIN:-}" ] && [ -r .env ]; then
    BASE_DOMAIN=$(sed -n 's/^BASE_DOMAIN=//p' .env | tail -n 1)
fi
if [ -z "${BASE_DOMAIN:-}" ]; then
    echo "make-certs: set BASE_DOMAIN (in .env or the environment)" >&2
    exit 2
fi
if ! command -v mkcert >/dev/null 2>&1; then
    echo "make-certs: mkcert is not installed (Debian/Ubuntu: apt-get install mkcert)" >&2
    exit 2
fi
CAROOT="$(pwd)/certs/ca"
export CAROOT
mkdir -p "$CAROOT"
mkcert -cert-file certs/tls.pem -key-file certs/tls-key.pem "$BASE_DOMAIN" "*.$BASE_DOMAIN"
cp "$CAROOT/rootCA.pem" certs/rootCA.pem
system_bundle=""
for candidate in /etc/ssl/certs/ca-certificates.crt /etc/pki/tls/certs/ca-bundle.crt /etc/ssl/cert.pem; do
    if [ -r "$candidate" ]; then
        system_bundle=$candidate
        break
    fi
done
if [ -z "$system_bundle" ]; then
    echo "make-certs: no system CA bundle found; ca-bundle.pem holds only the private CA" >&2
    cp certs/rootCA.pem certs/ca-bundle.pem
else
    cat "$system_bundle" certs/rootCA.pem > certs/ca-bundle.pem
fi
chmod 0644 certs/rootCA.pem certs/ca-bundle.pem certs/tls.pem
chmod 0600 certs/tls-key.pem "$CAROOT/rootCA-key.pem"
echo "make-certs: certificates for $BASE_DOMAIN and *.$BASE_DOMAIN in $(pwd)/certs"
echo "make-certs: to trust the CA in this host's browsers: CAROOT=$CAROOT mkcert -install"
