#!/bin/sh
# Writes a throwaway PKI for the TLS tests into DIR (nothing here is ever committed):
#   ca.pem               CA "tokensampler test CA"
#   server.pem/.key      signed by ca, SAN localhost + 127.0.0.1 + ::1
#   client.pem/.key      signed by ca, clientAuth
#   other_ca.pem         a second, unrelated CA
#   other_server.pem/.key  signed by other_ca, same SANs (certificate rotation)
#   other_client.pem/.key  signed by other_ca (a client mTLS must refuse)
# usage: make_test_certs.sh DIR
set -eu
dir=$1
mkdir -p "$dir"
cd "$dir"
days=2

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

ca() {  # name subject
  key "$1.key"
  openssl req -x509 -new -key "$1.key" -subj "/CN=$2" -days $days -out "$1.pem" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
}

leaf() {  # name ca usage
  key "$1.key"
  openssl req -new -key "$1.key" -subj "/CN=$1" -out "$1.csr"
  printf 'basicConstraints=CA:FALSE\nextendedKeyUsage=%s\nsubjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\n' \
    "$3" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA "$2.pem" -CAkey "$2.key" -CAcreateserial -days $days \
    -extfile "$1.ext" -out "$1.pem" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}

ca ca "tokensampler test CA"
ca other_ca "another test CA"
leaf server ca serverAuth
leaf client ca clientAuth
leaf other_server other_ca serverAuth
leaf other_client other_ca clientAuth
