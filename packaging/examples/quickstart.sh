#!/usr/bin/env bash
# Quick start: run the example job on this machine's Docker daemon with a local connections
# file and a local image. No AWS account, no registry.
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! ldd /bin/busybox 2>&1 | grep -q "not a dynamic"; then
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static >/dev/null
fi
bash tests/support/make-image.sh lava-test/busybox:latest
cargo build --quiet --bin lava-docker-run
LAVA_CONNECTIONS=packaging/examples/connections.json \
  ./target/debug/lava-docker-run --dev --pull missing packaging/examples/hello-job.json
