#!/usr/bin/env bash
# Build the KFP component image with buildah: `image/build.sh BASE TAG` (run by `make image`).
#
# BASE is a Python 3.11 image on Debian (the Dockerfile's default is python:3.11-slim). When BASE
# is localhost/timonel/python-base:*, it is made here from Debian's own packages (debootstrap, the
# apt mirror this machine already uses), for machines that reach no container registry.
# buildah stores images with the vfs driver and runs steps with chroot isolation, which work
# as root without a container runtime's namespaces.
set -euo pipefail
cd "$(dirname "$0")/.."
base=${1:?usage: image/build.sh BASE TAG}
tag=${2:?usage: image/build.sh BASE TAG}
local_base_prefix=localhost/timonel/python-base:
buildah=(buildah --storage-driver vfs)

need=()
command -v buildah >/dev/null || need+=(buildah)
if [[ $base == "$local_base_prefix"* ]] && ! command -v debootstrap >/dev/null; then
  need+=(debootstrap)
fi
if ((${#need[@]})); then
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}"
fi

if [[ $base == "$local_base_prefix"* ]] && ! "${buildah[@]}" inspect --type image "$base" >/dev/null 2>&1; then
  suite=${base#"$local_base_prefix"}
  suite=${suite#*-}   # 3.11-bookworm -> bookworm
  mirror=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n1)
  rootfs=$(mktemp -d)
  trap 'rm -rf "$rootfs"' EXIT
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    "$suite" "$rootfs" "${mirror:-http://deb.debian.org/debian}"
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  container=$("${buildah[@]}" from scratch)
  "${buildah[@]}" copy "$container" "$rootfs" /
  "${buildah[@]}" config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env LANG=C.UTF-8 --cmd python3 "$container"
  "${buildah[@]}" commit --rm "$container" "$base"
fi

# The build steps trust the CAs this machine trusts (a TLS-intercepting proxy on the way to the
# package index included); the bundle is mounted for the build only, not copied into the image.
"${buildah[@]}" build --isolation chroot --layers --build-arg "BASE=$base" \
  --volume /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro \
  --tag "$tag" .
