#!/usr/bin/env bash
# Builds rasentry with exactly the Dockerfile's build command, outside a
# container (CI runs no container engine): the RUN line after the
# "# ci:build" marker, run by sh -c as Docker runs it, with the Dockerfile's
# build arguments set as Docker sets them (environment variables), from the
# repository root (the build stage's WORKDIR holds the same tree). Then it
# checks the binary and the Dockerfile's promises: non-root user, only
# CAP_NET_RAW and CAP_NET_ADMIN, a health check, a Go version that matches
# go.mod.
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "docker-build: $*" >&2; exit 1; }

line=$(awk '/^# ci:build$/ { getline; print; exit }' Dockerfile)
[[ $line == "RUN "* ]] || fail "Dockerfile: no RUN line right after '# ci:build'"
cmd=${line#RUN }

arg() { sed -n "s/^ARG $1=//p" Dockerfile | head -1; }
go_image=$(arg GO_VERSION)
go_mod=$(sed -n 's/^go \([0-9]*\.[0-9]*\).*/\1/p' go.mod)
[[ $go_image == "$go_mod" ]] || fail "Dockerfile builds with Go $go_image, go.mod asks for $go_mod"
go_here=$(go env GOVERSION | sed 's/^go\([0-9]*\.[0-9]*\).*/\1/')
[[ $go_here == "$go_mod" ]] || fail "this machine has Go $go_here, the Dockerfile's image Go $go_image"

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
echo "+ $cmd   (VERSION=ci-check OUT=$out)"
VERSION=ci-check OUT=$out sh -c "$cmd"

"$out/rasentry" version | tee "$out/version.txt"
grep -q '^rasentry ci-check$' "$out/version.txt" || fail "-X main.version did not reach the binary"
if command -v ldd >/dev/null; then
  ldd "$out/rasentry" | grep -q 'libpcap' || fail "the binary does not link libpcap (-tags libpcap lost?)"
fi

grep -q '^USER rasentry' Dockerfile || fail "the runtime stage must run as the rasentry user"
grep -q 'setcap cap_net_raw,cap_net_admin=ep ' Dockerfile || fail "the binary must get CAP_NET_RAW and CAP_NET_ADMIN, and no more"
[[ $(grep -c "setcap cap_" Dockerfile) == 1 ]] || fail "one setcap only"
grep -q '^HEALTHCHECK ' Dockerfile || fail "no HEALTHCHECK"
echo "docker-build: the Dockerfile's build command builds"
