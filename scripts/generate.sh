#!/usr/bin/env bash
# Regenerates every stub from proto/, and docs/api.md from its comments. Generated files are
# committed and never edited by hand; CI runs this and fails when the result differs from what is committed.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
[ -x .venv/bin/python ] && python=${PYTHON:-.venv/bin/python}

out=sdk/python/jobwire/v1
rm -rf "$out"
mkdir -p "$out"
# mypy-protobuf (pinned in pyproject's dev extra) types the gRPC stubs too (*_pb2_grpc.pyi).
bindir=$(dirname "$("$python" -c 'import sys; print(sys.executable)')")
"$python" -m grpc_tools.protoc -Iproto \
  --plugin=protoc-gen-mypy_grpc="$bindir/protoc-gen-mypy_grpc" \
  --python_out=sdk/python --pyi_out=sdk/python --grpc_python_out=sdk/python \
  --mypy_grpc_out=sdk/python \
  proto/jobwire/v1/*.proto
printf '"""Generated from proto/jobwire/v1 by scripts/generate.sh; do not edit."""\n' > "$out/__init__.py"

# The API reference page, from the same protos' comments.
"$python" scripts/gen_api_docs.py > docs/api.md

# Every other language: buf.gen.yaml runs local plugins only (no remote plugin registry here):
# protoc-gen-es pinned in sdk/node/package-lock.json, and Debian's protoc-gen-go(-grpc).
buf=$(command -v buf || echo .venv/bin/buf)
need() { command -v "$1" >/dev/null || { echo "generate: $1 not found: $2" >&2; exit 1; }; }
need "$buf" "pip install buf-bin (make setup)"
need sdk/node/node_modules/.bin/protoc-gen-es "run npm ci in sdk/node (make node-setup)"
need protoc-gen-go "apt-get install protoc-gen-go"
need protoc-gen-go-grpc "apt-get install protoc-gen-go-grpc"
rm -rf sdk/node/src/gen sdk/go/gen
"$buf" generate
