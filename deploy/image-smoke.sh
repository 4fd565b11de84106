#!/usr/bin/env bash
# Smoke test of the smartlabs image: `make image-smoke` runs it as root.
#
#   deploy/image-smoke.sh IMAGE VERSION REVISION
#
# Containers cannot run on machines whose cgroups the engine cannot manage, so
# this runs the image's own filesystem as a container runtime would: exported
# with `create` + `export`, mounted read-only in a private mount namespace with
# the config bind-mounted at /etc/smartlabs, and the entrypoint started with
# chroot as user 65532:65532. It checks the image config (user, healthcheck,
# labels), that the server starts on the read-only root, that /healthz answers
# 200 with the build the labels name, that the HEALTHCHECK command passes, and
# that the root filesystem refuses writes. Where containers do run, it also runs
# the image itself with --read-only.
set -euo pipefail

image=${1:?usage: image-smoke.sh IMAGE VERSION REVISION}
want_version=${2:?usage: image-smoke.sh IMAGE VERSION REVISION}
want_revision=${3:?usage: image-smoke.sh IMAGE VERSION REVISION}
engine=${CONTAINER:-$(command -v podman || command -v docker)}
[ "$(id -u)" = 0 ] || { echo "image-smoke: needs root (mount namespaces, chroot)" >&2; exit 1; }

pass() { printf 'PASS  %s\n' "$*"; }
fail() { printf 'FAIL  %s\n' "$*" >&2; exit 1; }

work=$(mktemp -d)
cid=""
pid=""
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
	[ -n "$cid" ] && "$engine" rm -f "$cid" >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT

# 1. The image's configuration.
user=$("$engine" image inspect --format '{{.Config.User}}' "$image")
[ "$user" = "65532:65532" ] || fail "image user is '$user', want 65532:65532"
pass "image runs as user $user"
# The whole inspect output: podman and docker keep the healthcheck in different places.
hc=$("$engine" image inspect "$image" | tr -d ' \t\n')
[[ "$hc" == *'"Test":["CMD","/smartlabs","healthcheck"'* ]] || fail "no HEALTHCHECK running smartlabs healthcheck (podman needs --format docker)"
pass "HEALTHCHECK is smartlabs healthcheck"
label() { "$engine" image inspect --format "{{index .Config.Labels \"org.opencontainers.image.$1\"}}" "$image"; }
[ "$(label version)" = "$want_version" ] || fail "label version '$(label version)', want '$want_version'"
[ "$(label revision)" = "$want_revision" ] || fail "label revision '$(label revision)', want '$want_revision'"
pass "labels: version $want_version, revision $want_revision"
size=$("$engine" image inspect --format '{{.Size}}' "$image")
[ "$size" -lt 30000000 ] || fail "image is $size bytes, limit 30000000"
pass "image size $size bytes (< 30 MB)"

# 2. The image's filesystem.
mkdir -p "$work/rootfs" "$work/config" "$work/state"
chown 65532:65532 "$work/state"
cid=$("$engine" create "$image")
"$engine" export "$cid" | tar -C "$work/rootfs" -xf -
"$engine" rm -f "$cid" >/dev/null
cid=""
for f in smartlabs etc/passwd etc/group etc/ssl/certs/ca-certificates.crt; do
	[ -s "$work/rootfs/$f" ] || fail "/$f missing from the image"
done
[ -d "$work/rootfs/etc/smartlabs" ] || fail "/etc/smartlabs (the config mount point) missing"
if [ -e "$work/rootfs/bin/sh" ] || [ -e "$work/rootfs/usr/share/zoneinfo" ]; then
	fail "the image holds a shell or a zoneinfo tree: it is not the scratch image"
fi
grep -q '^smartlabs:x:65532:65532:' "$work/rootfs/etc/passwd" || fail "no passwd entry for 65532"
owned=$(find "$work/rootfs" -uid 65532 -printf '/%P ')
[ "$owned" = "/var/lib/smartlabs " ] || fail "paths owned by 65532: '$owned', want only /var/lib/smartlabs (the volume mount point)"
[ -z "$(ls -A "$work/rootfs/var/lib/smartlabs")" ] || fail "/var/lib/smartlabs is not empty"
pass "filesystem: /smartlabs, passwd entry 65532, CA certificates, no shell, no zoneinfo ($(find "$work/rootfs" -type f | wc -l) files); only the empty volume mount point /var/lib/smartlabs belongs to 65532"

# 3. The config a deployment mounts. time_zone needs the embedded tzdata: the
# image has no /usr/share/zoneinfo. The audit log goes to a mounted volume.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 18080)
cat >"$work/config/smartlabs.yaml" <<EOF
listen: 127.0.0.1:$port
public_url: https://smartlabs.example.org
audit_log: /var/lib/smartlabs/audit.jsonl
time_zone: America/Chicago
issuers:
  - name: Example
    iss: https://fhir.example.org/api/FHIR/R4
    client_id: smoke
    client_secret: \${SMARTLABS_SMOKE_SECRET}
EOF
chmod 0444 "$work/config/smartlabs.yaml"

# 4. Start the entrypoint as 65532:65532 on the read-only root, with the config
# mounted read-only and a writable volume for the audit log. unshare execs (no
# fork), so $pid is the server itself once chroot has exec'd it.
SMARTLABS_SMOKE_SECRET=not-a-real-secret unshare --mount --propagation private -- bash -c '
	set -e
	root=$1
	mount --bind "$root" "$root"
	mount --bind -o ro "$2" "$root/etc/smartlabs"
	mount --bind "$3" "$root/var/lib/smartlabs"
	mount -o remount,bind,ro "$root"
	exec chroot --userspec=65532:65532 "$root" /smartlabs serve --config /etc/smartlabs/smartlabs.yaml
' smoke "$work/rootfs" "$work/config" "$work/state" >"$work/stdout" 2>"$work/stderr" &
pid=$!

up=""
for _ in $(seq 1 100); do
	if body=$(curl -fsS --max-time 2 "http://127.0.0.1:$port/healthz" 2>/dev/null); then
		up=1
		break
	fi
	kill -0 "$pid" 2>/dev/null || break
	sleep 0.1
done
[ -n "$up" ] || { cat "$work/stdout" "$work/stderr" >&2; fail "the server never answered /healthz"; }
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/healthz")
[ "$code" = 200 ] || fail "/healthz answered $code"
pass "/healthz 200: $body"

uid=$(awk '/^Uid:/ {print $2, $3, $4, $5}' "/proc/$pid/status")
gid=$(awk '/^Gid:/ {print $2, $3, $4, $5}' "/proc/$pid/status")
[ "$uid" = "65532 65532 65532 65532" ] && [ "$gid" = "65532 65532 65532 65532" ] || fail "server runs as uid '$uid' gid '$gid'"
pass "server process $pid runs as uid/gid 65532 (real, effective, saved, fs)"

rootopts=$(awk '$5 == "/" {print $6}' "/proc/$pid/mountinfo")
[[ ",$rootopts," == *,ro,* ]] || fail "the server's root is mounted '$rootopts', not read-only"
if out=$(nsenter --target "$pid" --mount -- touch "$work/rootfs/written-by-root" 2>&1); then
	fail "root could write to the server's root filesystem"
fi
pass "root filesystem is read-only (mount options $rootopts; even root's write fails: ${out##*: })"

audit=$(stat -c '%u:%g %a' "$work/state/audit.jsonl" 2>/dev/null) || fail "no audit log in the mounted volume"
[ "$audit" = "65532:65532 600" ] || fail "audit log is '$audit', want 65532:65532 600"
pass "audit log opened in the mounted volume (/var/lib/smartlabs/audit.jsonl, $audit), not in the image"

# The server, not only the liveness endpoint, works on that root.
[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/readyz")" = 200 ] || fail "/readyz is not 200"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/launch?iss=https%3A%2F%2Fother.example%2Ffhir")
[ "$code" = 400 ] || fail "unknown iss answered $code, want 400"
pass "/readyz 200; a launch from an unknown EHR gets its 400 page"

want_line="smartlabs $want_version "
[[ "$body" == "ok $want_line"*" revision $want_revision"* ]] || fail "/healthz says '$body', want 'ok ${want_line}go… revision $want_revision'"
version=$(chroot --userspec=65532:65532 "$work/rootfs" /smartlabs version)
[[ "$version" == "$want_line"*" revision $want_revision"* ]] || fail "smartlabs version says '$version'"
pass "smartlabs version: $version"

hc_out=$(SMARTLABS_SMOKE_SECRET=x nsenter --target "$pid" --mount -- chroot --userspec=65532:65532 "$work/rootfs" \
	/smartlabs healthcheck --config /etc/smartlabs/smartlabs.yaml) || fail "the HEALTHCHECK command failed"
pass "HEALTHCHECK command inside the image's filesystem: $hc_out"

kill -TERM "$pid"
wait "$pid" || fail "the server did not exit cleanly on SIGTERM"
pid=""
pass "SIGTERM: the server drained and exited 0"
if grep -q '"level":"error"' "$work/stderr"; then
	cat "$work/stderr" >&2
	fail "errors logged"
fi

# 5. Where the engine can run containers, run the image itself read-only.
if "$engine" run --rm --read-only "$image" version >"$work/run" 2>&1; then
	[[ "$(cat "$work/run")" == "$want_line"* ]] || fail "container run: $(cat "$work/run")"
	pass "container run --read-only: $(cat "$work/run")"
else
	printf 'SKIP  %s cannot run containers here (%s): the filesystem checks above stand in\n' \
		"$(basename "$engine")" "$(tail -n 1 "$work/run")"
fi
echo "image-smoke: all checks passed for $image"
