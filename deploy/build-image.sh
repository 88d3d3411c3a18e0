#!/usr/bin/env bash
# Builds the strom image: `deploy/build-image.sh [TAG]` (default strom:latest);
# `deploy/build-image.sh --build-only` builds the static binary and stops.
#
# The binary is linked statically against glibc (RUSTFLAGS=+crt-static, which needs an
# explicit --target and its own target dir), stripped, and put FROM scratch with
# Kafka's tool names as relative links next to it, /etc/passwd and /etc/group naming
# the strom user (10001), /tmp, and the image defaults in /etc/strom/node.toml.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
build_only=
if [ "${1:-}" = "--build-only" ]; then
  build_only=1
  shift
fi
tag=${1:-strom:latest}
target_dir=${STROM_STATIC_TARGET_DIR:-$HOME/.cache/strom-target/static}
triple=x86_64-unknown-linux-gnu

echo "[image] cargo build --release (static, $triple) in $target_dir"
# No line tables (the release profile's): the binary is stripped below anyway.
(cd "$root" && RUSTFLAGS="-C target-feature=+crt-static" CARGO_TARGET_DIR="$target_dir" CARGO_PROFILE_RELEASE_DEBUG=false \
  cargo build --release --locked -p strom-broker --bin strom --target "$triple")
bin="$target_dir/$triple/release/strom"
if [ -n "$build_only" ]; then
  echo "[image] built $bin"
  exit 0
fi
if readelf -d "$bin" | grep -q NEEDED; then
  echo "[image] $bin needs shared libraries: refusing to put it in a scratch image" >&2
  readelf -d "$bin" | grep NEEDED >&2
  exit 1
fi

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/rootfs/usr/local/bin" "$stage/rootfs/etc/strom" "$stage/rootfs/tmp" "$stage/data"
chmod 1777 "$stage/rootfs/tmp"
install -m 0755 "$bin" "$stage/rootfs/usr/local/bin/strom"
strip "$stage/rootfs/usr/local/bin/strom"
# The tool names strom answers to, as links to it in the same directory.
links=$(mktemp -d)
"$bin" install-tools "$links" >/dev/null
for l in "$links"/*; do
  ln -s strom "$stage/rootfs/usr/local/bin/$(basename "$l")"
done
rm -rf "$links"
install -m 0644 "$here/image/node.toml" "$stage/rootfs/etc/strom/node.toml"
printf 'root:x:0:0:root:/:/usr/local/bin/strom\nstrom:x:10001:10001:strom:/var/lib/strom:/usr/local/bin/strom\n' \
  > "$stage/rootfs/etc/passwd"
printf 'root:x:0:\nstrom:x:10001:\n' > "$stage/rootfs/etc/group"
cp "$here/Dockerfile" "$stage/Dockerfile"

echo "[image] docker build -t $tag"
docker build -q -t "$tag" "$stage" >/dev/null
size=$(docker image inspect -f '{{.Size}}' "$tag")
echo "[image] $tag: $((size / 1024 / 1024)) MiB ($size bytes), $(ls "$stage/rootfs/usr/local/bin" | wc -l) names on PATH"
