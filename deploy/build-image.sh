#!/usr/bin/env bash
# Builds the image khop:latest (also tagged khop:<git short hash>, "-dirty" when the working tree has
# changes) from this checkout's release binary, with no registry: deploy/Dockerfile is FROM scratch and
# gets the binary and the shared libraries `ldd` lists for it, copied from this host.
#
#   deploy/build-image.sh
#
# Environment: KHOP (a khop binary to put in the image instead of building the release one; it must run
# on this host, since its libraries are taken from here), CARGO_TARGET_DIR (honoured by the build),
# IMAGE (default khop), STRIP=0 (keep the binary's line tables: a 5 times larger image).
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "build-image: $*" >&2; exit 1; }

image="${IMAGE:-khop}"
command -v docker >/dev/null || die "docker is not installed"
command -v ldd >/dev/null || die "ldd is needed to find the binary's libraries"

if [ -n "${KHOP:-}" ]; then
  bin="$KHOP"
else
  echo "build-image: cargo build --release -p khop (waits if another cargo holds the lock)" >&2
  cargo build --release --locked -p khop >&2 || die "cargo build failed"
  bin="${CARGO_TARGET_DIR:-target}/release/khop"
fi
[ -x "$bin" ] || die "$bin is not an executable"
[[ "$("$bin" --version 2>/dev/null)" == khop* ]] || die "$bin is not a khop binary that runs on this host"

stage=$(mktemp -d "${TMPDIR:-/tmp}/khop-image.XXXXXX")
trap 'rm -rf "$stage"' EXIT
root="$stage/rootfs"
mkdir -p "$root/etc" "$root/tmp" "$root/var/lib/khop"
chmod 1777 "$root/tmp" "$root/var/lib/khop"
# The release profile keeps line tables (debug = "line-tables-only": 4/5 of the binary); the image
# drops them (symbols stay, so a backtrace still names functions) unless STRIP=0.
if [ "${STRIP:-1}" != 0 ] && command -v strip >/dev/null; then
  strip --strip-debug -o "$stage/khop" "$bin"
else
  cp "$bin" "$stage/khop"
fi

# The libraries as the loader will look for them: each at the path ldd resolved (the loader at the path
# the binary names, e.g. /lib64/ld-linux-x86-64.so.2), symbolic links followed. A static binary
# (musl) lists none.
lib_dirs=()
copy_lib() {
  mkdir -p "$root$(dirname "$1")"
  cp -L "$1" "$root$1"
  local d
  d=$(dirname "$1")
  [[ " ${lib_dirs[*]} " == *" $d "* ]] || lib_dirs+=("$d")
}
libs=$(ldd "$bin" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' | sort -u)
for lib in $libs; do copy_lib "$lib"; done
# glibc before 2.34 loads host-name lookup (NSS "files" and "dns") from modules ldd does not list;
# the coordinators and workers find each other by name. Later glibc has them built in (and ships
# stubs, copied as well: harmless).
libc=$(printf '%s\n' "$libs" | grep '/libc\.so' | head -1 || true)
if [ -n "$libc" ]; then
  for extra in libnss_files.so.2 libnss_dns.so.2 libresolv.so.2; do
    if [ -e "$(dirname "$libc")/$extra" ]; then copy_lib "$(dirname "$libc")/$extra"; fi
  done
fi
printf 'hosts: files dns\n' >"$root/etc/nsswitch.conf"
# CA certificates only matter for an object store over HTTPS; take the host's bundle when it has one.
for bundle in /etc/ssl/certs/ca-certificates.crt /etc/pki/tls/certs/ca-bundle.crt /etc/ssl/cert.pem; do
  if [ -f "$bundle" ]; then
    mkdir -p "$root/etc/ssl/certs"
    cp -L "$bundle" "$root/etc/ssl/certs/ca-certificates.crt"
    break
  fi
done
cp deploy/Dockerfile "$stage/Dockerfile"

revision=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ "$revision" != unknown ] && [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then
  revision="$revision-dirty"
fi
library_path=$(IFS=:; echo "${lib_dirs[*]}")
echo "build-image: $image:latest and $image:$revision from $bin (the $(wc -w <<<"$libs") libraries ldd lists)" >&2
# The legacy builder and BuildKit both build FROM scratch without a registry.
docker build --quiet --build-arg "LIBRARY_PATH=$library_path" --build-arg "REVISION=$revision" \
  -t "$image:$revision" "$stage" >/dev/null
# The image must start before it becomes latest: a missing library shows up here, not in a cluster.
[[ "$(docker run --rm "$image:$revision" --version)" == khop* ]] || die "the image does not start: $image:$revision"
docker tag "$image:$revision" "$image:latest"
echo "$image:latest"
