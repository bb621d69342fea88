#!/usr/bin/env bash
# The test command: installs what the tests need on a fresh Debian machine, starts moto's
# server and a registry with htpasswd auth on free loopback ports, builds the test image, and
# runs the whole suite. Usage: bash tests/run.sh [extra nextest args]
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

say() { printf '\n== %s\n' "$*" >&2; }

need_apt=()
for pair in docker-registry:docker-registry skopeo:skopeo htpasswd:apache2-utils \
            docker-credential-ecr-login:amazon-ecr-credential-helper rpm:rpm script:bsdutils; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || need_apt+=("${pair#*:}")
done
[ -x /bin/busybox ] && ldd /bin/busybox 2>&1 | grep -q "not a dynamic" || need_apt+=(busybox-static)
if [ ${#need_apt[@]} -gt 0 ]; then
  say "apt-get install ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi
if ! python3 -c 'import moto.server, werkzeug' >/dev/null 2>&1; then
  say "pip install moto[server]"
  python3 -m pip install -q 'moto[server]'
fi
if ! cargo nextest --version >/dev/null 2>&1; then
  say "cargo install cargo-nextest"
  cargo install --locked cargo-nextest
fi
docker info >/dev/null 2>&1 || { echo "tests/run.sh: the Docker daemon is not reachable" >&2; exit 1; }

work=$(mktemp -d -t lava-tests.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { # url expected-code what
  for _ in $(seq 1 300); do
    code=$(curl -s -o /dev/null -w '%{http_code}' "$1" || true)
    [ "$code" = "$2" ] && return 0
    sleep 0.2
  done
  echo "tests/run.sh: $3 did not start (see $work)" >&2; cat "$work"/*.log >&2 || true; exit 1
}

say "starting moto's server"
moto_port=$(free_port)
(cd "$work" && exec python3 "$root/tests/support/moto_server.py" "$moto_port" >"$work/moto.log" 2>&1) &
pids+=($!)
export LAVA_TEST_MOTO_URL="http://127.0.0.1:$moto_port"

say "starting a registry with htpasswd auth"
reg_port=$(free_port)
export LAVA_TEST_REGISTRY="127.0.0.1:$reg_port"
export LAVA_TEST_REGISTRY_USER=lavauser
export LAVA_TEST_REGISTRY_PASSWORD="pw-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
htpasswd -Bbn "$LAVA_TEST_REGISTRY_USER" "$LAVA_TEST_REGISTRY_PASSWORD" > "$work/htpasswd"
cat > "$work/registry.yml" <<YML
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $work/registry-data
http:
  addr: 127.0.0.1:$reg_port
  secret: lava-test
auth:
  htpasswd:
    realm: lava-test
    path: $work/htpasswd
YML
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
pids+=($!)

wait_http "$LAVA_TEST_MOTO_URL/_lava_test/ping" 200 "moto"
wait_http "http://$LAVA_TEST_REGISTRY/v2/" 401 "the registry"

say "building the test image"
bash tests/support/make-image.sh lava-test/busybox:latest

# CI builds release once and reuses it for the package check; locally, the dev profile.
profile=()
[ "${CI:-}" = "true" ] && profile=(--cargo-profile release)
say "cargo nextest run ${profile[*]}"
cargo nextest run "${profile[@]}" --lib --bins --tests --no-fail-fast "$@"
