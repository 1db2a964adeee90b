#!/usr/bin/env bash
# mkimage.sh OUT.tar [TAG] writes a busybox image as a `docker save` archive
# (manifest.json, <config>.json, <diffID>/layer.tar) built from the host's
# busybox-static: /bin/busybox, one symlink per applet of `busybox --list`,
# /etc/passwd and /etc/group, /tmp, /root, /proc, /sys, /dev; config Cmd ["sh"]
# and the usual PATH, for the machine's architecture. The same busybox binary
# always gives the same image ID.
set -euo pipefail

out=${1:?usage: mkimage.sh OUT.tar [TAG]}
tag=${2:-busybox:latest}
busybox=/bin/busybox

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/rootfs
mkdir -p "$root"/{bin,etc,tmp,root,proc,sys,dev}
chmod 1777 "$root/tmp"
chmod 700 "$root/root"
cp "$busybox" "$root/bin/busybox"
for applet in $("$busybox" --list); do
	[ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"

layer=$work/layer.tar
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime='2024-01-01 00:00:00Z' \
	--format=posix --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
	-C "$root" -cf "$layer" bin etc tmp root proc sys dev
diff_id=$(sha256sum "$layer" | cut -d' ' -f1)

# The image is for the machine's own architecture, as its busybox is (Debian's
# names to OCI's: armhf is arm v7).
case $(dpkg --print-architecture 2>/dev/null || uname -m) in
	amd64 | x86_64) platform='"architecture":"amd64"' ;;
	arm64 | aarch64) platform='"architecture":"arm64"' ;;
	armhf | armv7l) platform='"architecture":"arm","variant":"v7"' ;;
	*) echo "mkimage.sh: no OCI name for this machine's architecture" >&2; exit 1 ;;
esac
config='{'$platform',"os":"linux","created":"2024-01-01T00:00:00Z",'
config+='"config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["sh"]},'
config+='"rootfs":{"type":"layers","diff_ids":["sha256:'$diff_id'"]},'
config+='"history":[{"created":"2024-01-01T00:00:00Z","created_by":"testenv/bench/mkimage.sh"}]}'
config_id=$(printf '%s' "$config" | sha256sum | cut -d' ' -f1)

arch=$work/archive
mkdir -p "$arch/$diff_id"
mv "$layer" "$arch/$diff_id/layer.tar"
printf '%s' "$config" >"$arch/$config_id.json"
printf '[{"Config":"%s.json","RepoTags":["%s"],"Layers":["%s/layer.tar"]}]' \
	"$config_id" "$tag" "$diff_id" >"$arch/manifest.json"
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime='2024-01-01 00:00:00Z' \
	-C "$arch" -cf "$out" manifest.json "$config_id.json" "$diff_id"
echo "$config_id"
