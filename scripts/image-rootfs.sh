#!/bin/sh
# The container image's whole filesystem, from the standalone binary (npm run dist): the binary, the shared
# libraries it links (glibc's loader, libc, libm, libdl, libpthread, libstdc++, libgcc_s, copied from this
# machine at the paths ldd names), CA certificates, /etc/passwd and /etc/group with the unprivileged user
# 65532, and an empty /tmp. No shell, no package manager, no Node installation.
# The CA bundle is made from Debian's ca-certificates (Mozilla's list, /usr/share/ca-certificates/mozilla),
# never from this machine's /etc/ssl/certs, which holds whatever local CAs were added (a proxy's, a company's).
# Used by scripts/build-image.ts (no Docker) and by the Dockerfile's last build stage, so both make one image.
#   sh scripts/image-rootfs.sh BINARY ROOT_DIR [CA_DIR]      (CA_DIR default: /usr/share/ca-certificates/mozilla)
set -eu

binary=$1
root=$2
ca_dir=${3:-/usr/share/ca-certificates/mozilla}

if [ ! -x "$binary" ]; then
  echo "image-rootfs: $binary is not an executable (run npm run dist first)" >&2
  exit 1
fi
if ! ls "$ca_dir"/*.crt >/dev/null 2>&1; then
  echo "image-rootfs: no certificates in $ca_dir (install Debian's ca-certificates)" >&2
  exit 1
fi
if [ -e "$root" ] && [ -n "$(ls -A "$root")" ]; then
  echo "image-rootfs: $root is not empty" >&2
  exit 1
fi

mkdir -p "$root/usr/local/bin" "$root/etc/ssl/certs" "$root/tmp"
cp "$binary" "$root/usr/local/bin/etcd-backup"
chmod 0755 "$root/usr/local/bin/etcd-backup"

# ldd prints `name => /path (addr)` for each library and `/path (addr)` for the loader; the vDSO has no file.
libs=$(ldd "$binary" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }')
if [ -z "$libs" ]; then
  echo "image-rootfs: ldd named no library for $binary" >&2
  exit 1
fi
for lib in $libs; do
  mkdir -p "$root$(dirname "$lib")"
  # -L: the file itself, not the distribution's symlink (merged /usr makes /lib a link to usr/lib).
  cp -L "$lib" "$root$lib"
  chmod 0755 "$root$lib"
done

# Sorted by name (the C locale's order), so the same certificates give the same bytes.
for crt in $(LC_ALL=C ls "$ca_dir"/*.crt); do
  cat "$crt"
done > "$root/etc/ssl/certs/ca-certificates.crt"
chmod 0644 "$root/etc/ssl/certs/ca-certificates.crt"

# 65532 matches the manifests' runAsUser; no login shell exists, none is named.
cat > "$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/nonexistent
etcd-backup:x:65532:65532:etcd-backup:/nonexistent:/nonexistent
EOF
cat > "$root/etc/group" <<'EOF'
root:x:0:
etcd-backup:x:65532:
EOF
# Names resolve from /etc/hosts, then DNS (glibc 2.34+ has both in libc itself).
cat > "$root/etc/nsswitch.conf" <<'EOF'
passwd: files
group: files
hosts: files dns
EOF
chmod 0644 "$root/etc/passwd" "$root/etc/group" "$root/etc/nsswitch.conf"
chmod 1777 "$root/tmp"
find "$root" -type d -exec chmod go-w {} + -exec chmod a+rx {} +
chmod 1777 "$root/tmp"
