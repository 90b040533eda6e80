#!/usr/bin/env bash
# mkcerts.sh DIR: a test CA and two certificates it signs, for the stand-in
# API server (tests/apiserver/standin.py) and its clients:
#   DIR/ca.crt, DIR/ca.key           the CA
#   DIR/server.crt, DIR/server.key   SAN IP:127.0.0.1, IP:::1, DNS:localhost,
#                                    DNS:kubernetes.default.svc
#   DIR/client.crt, DIR/client.key   CN ferry-test, for client-cert auth
# EC keys (prime256v1), valid for 2 days. Quiet; exits non-zero on failure.
set -eu

dir=${1:?usage: mkcerts.sh DIR}
mkdir -p "$dir"
cd "$dir"

ext=$(mktemp "${TMPDIR:-/tmp}/mkcerts.XXXXXX")
trap 'rm -f "$ext" ca.srl' EXIT

key() { openssl ecparam -name prime256v1 -genkey -noout -out "$1" 2>/dev/null; chmod 600 "$1"; }

key ca.key
openssl req -x509 -new -key ca.key -sha256 -days 2 -subj "/CN=ferry-test-ca" \
	-addext "basicConstraints=critical,CA:TRUE" \
	-addext "keyUsage=critical,keyCertSign,cRLSign" -out ca.crt 2>/dev/null

# sign NAME CN EXTENSIONS: NAME.key and NAME.crt signed by the CA.
sign() {
	key "$1.key"
	printf '%s\n' "$3" >"$ext"
	openssl req -new -key "$1.key" -subj "/CN=$2" 2>/dev/null |
		openssl x509 -req -CA ca.crt -CAkey ca.key -CAcreateserial -sha256 -days 2 \
			-extfile "$ext" -out "$1.crt" 2>/dev/null
}

sign server kube-apiserver "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost,DNS:kubernetes.default.svc"

sign client ferry-test "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"

openssl verify -CAfile ca.crt server.crt client.crt >/dev/null
