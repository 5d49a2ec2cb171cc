#!/usr/bin/env bash
# Development TLS certificates for Mosquitto's 8883 listener.
#
#   scripts/make-dev-certs.sh [OUT_DIR] [HOSTNAME...]
#
# Makes, in OUT_DIR (default ./certs):
#   ca.crt / ca.key         a development CA (give ca.crt to devices and the hub)
#   server.crt / server.key the broker's certificate, signed by that CA, valid for
#                           localhost, 127.0.0.1, ::1 and every HOSTNAME given
#                           (default: $VH_BROKER_HOSTNAME, else this machine's hostname)
#
# For development and tests only: a production broker gets its certificate from
# the township's own CA or ACME. Existing files are kept unless FORCE=1; the
# CA key never leaves OUT_DIR and is created 0600.
# Environment: DAYS (default 825), KEY_BITS (default 2048), FORCE=1 to overwrite,
# KEY_GROUP (default mosquitto) given read access to server.key.
set -euo pipefail

out="${1:-./certs}"
shift || true
hosts=("$@")
if [ ${#hosts[@]} -eq 0 ]; then
  hosts=("${VH_BROKER_HOSTNAME:-$(hostname -f 2>/dev/null || hostname)}")
fi
days="${DAYS:-825}"
bits="${KEY_BITS:-2048}"

command -v openssl >/dev/null || { echo "openssl not found: apt-get install -y openssl" >&2; exit 1; }
mkdir -p "$out"
umask 077

if [ -e "$out/server.crt" ] && [ "${FORCE:-0}" != "1" ]; then
  echo "$out/server.crt exists; set FORCE=1 to make new certificates" >&2
  exit 0
fi

# Subject alternative names: what clients check the certificate against.
san="DNS:localhost,IP:127.0.0.1,IP:::1"
for h in "${hosts[@]}"; do
  [ -z "$h" ] && continue
  if [[ "$h" =~ ^[0-9.]+$ || "$h" == *:* ]]; then
    san="$san,IP:$h"
  else
    san="$san,DNS:$h"
  fi
done

# 1. The development CA (self-signed, may only sign certificates).
openssl req -x509 -new -newkey "rsa:$bits" -nodes -sha256 -days "$days" \
  -keyout "$out/ca.key" -out "$out/ca.crt" \
  -subj "/O=VillageHub development/CN=VillageHub dev CA" \
  -addext "basicConstraints=critical,CA:TRUE" \
  -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null

# 2. The broker's key and a request for it.
openssl req -new -newkey "rsa:$bits" -nodes -sha256 \
  -keyout "$out/server.key" -out "$out/server.csr" \
  -subj "/O=VillageHub development/CN=${hosts[0]:-localhost}" 2>/dev/null

# 3. The CA signs it, for TLS servers only, with the names above.
ext="$(mktemp)"
trap 'rm -f "$ext"' EXIT
cat >"$ext" <<EXT
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=$san
EXT
openssl x509 -req -in "$out/server.csr" -CA "$out/ca.crt" -CAkey "$out/ca.key" \
  -CAcreateserial -out "$out/server.crt" -days "$days" -sha256 -extfile "$ext" 2>/dev/null
rm -f "$out/server.csr" "$out/ca.srl"

# Mosquitto drops root to the `mosquitto` user before it reads the key: let that
# group read it (the CA key stays owner-only). KEY_GROUP: a group name or a numeric
# gid, e.g. KEY_GROUP=1883 for the eclipse-mosquitto Docker image.
key_group="${KEY_GROUP:-mosquitto}"
chmod 0644 "$out/ca.crt" "$out/server.crt"
chmod 0640 "$out/server.key"
if [ "$(id -u)" = "0" ]; then
  if [[ "$key_group" =~ ^[0-9]+$ ]] || getent group "$key_group" >/dev/null; then
    chgrp "$key_group" "$out/server.key"
  fi
fi

echo "CA:          $out/ca.crt"
echo "server cert: $out/server.crt  ($san)"
echo "server key:  $out/server.key"
