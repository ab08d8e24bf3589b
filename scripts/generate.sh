#!/usr/bin/env bash
# Regenerates every stub from proto/. Generated files are committed and never edited by hand;
# CI runs this and fails when the result differs from what is committed.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
[ -x .venv/bin/python ] && python=${PYTHON:-.venv/bin/python}

out=sdk/python/jobwire/v1
rm -rf "$out"
mkdir -p "$out"
"$python" -m grpc_tools.protoc -Iproto \
  --python_out=sdk/python --pyi_out=sdk/python --grpc_python_out=sdk/python \
  proto/jobwire/v1/*.proto
printf '"""Generated from proto/jobwire/v1 by scripts/generate.sh; do not edit."""\n' > "$out/__init__.py"
