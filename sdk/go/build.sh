#!/usr/bin/env bash
# Builds the Go SDK and its examples offline, against Debian's Go packages only:
#   apt-get install golang-go golang-google-grpc-dev golang-google-protobuf-dev
# (golang-google-genproto-dev comes with golang-google-grpc-dev). Nothing is fetched.
#
# It builds in GOPATH mode, the way Debian builds its own Go packages: a throwaway GOPATH holds
# this module at its import path (jobwire.dev/sdk/go, a symlink to this directory) and
# /usr/share/gocode supplies the dependencies. go.mod names the same versions for users who
# build in module mode with network access (`go build ./...` there needs nothing from here).
#
#   sdk/go/build.sh            # builds every package, binaries into sdk/go/bin/
#   sdk/go/build.sh vet        # go vet as well
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
gocode=/usr/share/gocode
command -v go >/dev/null || { echo "go not found: apt-get install golang-go" >&2; exit 1; }
[ -d "$gocode/src/google.golang.org/grpc" ] \
  || { echo "$gocode lacks grpc: apt-get install golang-google-grpc-dev" >&2; exit 1; }

gopath="$(mktemp -d)"
trap 'rm -rf "$gopath"' EXIT
mkdir -p "$gopath/src/jobwire.dev/sdk" "$here/bin"
ln -s "$here" "$gopath/src/jobwire.dev/sdk/go"

export GO111MODULE=off GOPATH="$gopath:$gocode" GOFLAGS= GOPROXY=off
[ -n "${GOCACHE:-}${XDG_CACHE_HOME:-}${HOME:-}" ] || export GOCACHE="$here/.gocache"
cd "$gopath/src/jobwire.dev/sdk/go"
go build ./...
go build -o "$here/bin/" ./examples/...
if [ "${1:-}" = vet ]; then
  go vet ./...
fi
