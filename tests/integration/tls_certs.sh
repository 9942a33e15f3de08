#!/bin/bash
# SPDX-License-Identifier: MIT
# tls_certs.sh DIR: make a test CA, server certificates for a.test and b.test
# (SNI), a client certificate, and a second CA nobody uses, with the openssl CLI.
# Nothing secret is kept in the repository; DIR is a temporary directory.
set -euo pipefail
d=$1
mkdir -p "$d"
cd "$d"
ec() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
ca() {  # ca NAME SUBJECT
    ec "$1.key"
    openssl req -x509 -new -key "$1.key" -subj "$2" -days 2 -out "$1.pem" \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
}
leaf() {  # leaf NAME SUBJECT SAN EKU
    ec "$1.key"
    openssl req -new -key "$1.key" -subj "$2" -out "$1.csr"
    printf 'subjectAltName=%s\nextendedKeyUsage=%s\nbasicConstraints=CA:FALSE\n' "$3" "$4" > "$1.ext"
    openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
        -extfile "$1.ext" -out "$1.crt" 2>/dev/null
    cat "$1.crt" ca.pem > "$1.pem"      # the certificate, then its chain
    rm -f "$1.csr" "$1.ext"
}
ca ca "/O=weft test/CN=weft test CA"
ca other "/O=elsewhere/CN=other CA"
leaf a "/O=weft test/CN=a.test" "DNS:a.test,DNS:localhost,IP:127.0.0.1" serverAuth
leaf b "/O=weft test/CN=b.test" "DNS:b.test" serverAuth
leaf client "/O=weft test/CN=client one" "DNS:client.test" clientAuth
printf -- '-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n' > bad.pem
