#!/usr/bin/env bash
# Installs the Debian packages the test suite needs when they are missing (as root, or through
# sudo); otherwise says what to install. Used by `make test` and .ci/run, so a fresh machine needs
# nothing by hand.
set -euo pipefail

# System packages. The tests start their own redis-server on a free port, so whether Debian's
# redis-server service runs (or what it holds on 6379) does not matter.
missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
# nginx: the L7 gRPC proxy in front of two brokers in tests/faults (run from a temp prefix).
[ -x /usr/sbin/nginx ] || command -v nginx >/dev/null || missing+=(nginx)
command -v make >/dev/null || missing+=(make)
command -v git >/dev/null || missing+=(git)
command -v python3 >/dev/null || missing+=(python3)
python3 -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
# Node 20+ and npm, and Go with Debian's gRPC libraries (the
# only Go source reachable here). golang-github-golang-protobuf-1-5-dev must win over the 1.3
# package apt would pick for golang-google-grpc-dev: 1.3 crashes on protobuf APIv2 messages.
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
for pkg in golang-go protoc-gen-go protoc-gen-go-grpc golang-google-grpc-dev \
  golang-google-protobuf-dev golang-github-golang-protobuf-1-5-dev; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed' || missing+=("$pkg")
done
((${#missing[@]})) || exit 0
if [ "$(id -u)" -eq 0 ]; then sudo=(); elif command -v sudo >/dev/null; then sudo=(sudo); else
  echo "missing Debian packages: ${missing[*]}" >&2
  echo "install them with: apt-get install ${missing[*]}" >&2
  exit 1
fi
echo "installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

