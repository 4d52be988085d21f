#!/usr/bin/env bash
# A local S3 for the object-store tests: moto's server (from PyPI), installed once into a virtual
# environment under ~/.cache/khop, then serving on 127.0.0.1:PORT until killed. Nothing else of the
# project needs Python.
set -euo pipefail
port="${1:?usage: moto-server.sh PORT}"
venv="${KHOP_MOTO_VENV:-$HOME/.cache/khop/moto-venv}"
mkdir -p "$(dirname "$venv")"
(
  flock 9
  if [ ! -x "$venv/bin/moto_server" ]; then
    echo "installing moto into $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet 'moto[server]==5.2.*'
  fi
) 9>"$venv.lock"
exec "$venv/bin/moto_server" -H 127.0.0.1 -p "$port"
