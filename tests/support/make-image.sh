#!/usr/bin/env bash
# Build a tiny test image from Debian's busybox-static: a rootfs tarball fed to `docker import`.
# Usage: make-image.sh [TAG]   (default lava-test/busybox:latest). Idempotent.
set -euo pipefail
tag=${1:-lava-test/busybox:latest}
if docker image inspect "$tag" >/dev/null 2>&1; then exit 0; fi
bb=$(command -v busybox || true)
[ -n "$bb" ] && file_is_static=$(ldd "$bb" 2>&1 | grep -c "not a dynamic" || true)
if [ -z "$bb" ] || [ "${file_is_static:-0}" = 0 ]; then
  echo "make-image.sh: needs a static busybox (apt-get install busybox-static)" >&2; exit 1
fi
root=$(mktemp -d); trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/bin "$root"/tmp "$root"/etc
cp "$bb" "$root"/bin/busybox
for applet in $("$bb" --list); do [ "$applet" = busybox ] || ln -s busybox "$root/bin/$applet"; done
echo 'root:x:0:0:root:/:/bin/sh' > "$root"/etc/passwd
echo 'root:x:0:' > "$root"/etc/group
chmod 1777 "$root"/tmp
tar -C "$root" -cf "$root.tar" .
docker import -c 'ENV PATH=/bin' -c 'CMD ["/bin/sh", "-c", "echo hello from the image entry point"]' "$root.tar" "$tag" >/dev/null
rm -f "$root.tar"
