#!/usr/bin/env bash
# CI check of the packages: build both, install the .deb, run the installed programs, remove it
# cleanly, and check that the .rpm carries the same files.
set -euo pipefail
cd "$(dirname "$0")/.."
fail() { echo "packaging check: $*" >&2; exit 1; }

command -v rpmbuild >/dev/null || { DEBIAN_FRONTEND=noninteractive apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rpm >/dev/null; }
python3 packaging/build.py
target=$(cargo metadata --no-deps --format-version 1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
deb=$(ls "$target"/debian/lava-docker_*.deb | tail -1)
rpm=$(ls "$target"/generate-rpm/lava-docker-*.rpm | tail -1)

dpkg -r lava-docker >/dev/null 2>&1 || true
dpkg -i "$deb" >/dev/null
for prog in docker-credential-lava lava-docker-run; do
  [ "$(command -v $prog)" = "/usr/bin/$prog" ] || fail "$prog is not /usr/bin/$prog"
  /usr/bin/$prog --version | grep -q "$prog 0" || fail "$prog --version"
  /usr/bin/$prog --help | grep -qi "usage" || fail "$prog --help"
  [ -f /usr/share/man/man1/$prog.1.gz ] || fail "no man page for $prog"
  [ -f /usr/share/bash-completion/completions/$prog ] || fail "no bash completion for $prog"
  [ -f /usr/share/zsh/vendor-completions/_$prog ] || fail "no zsh completion for $prog"
  [ -f /usr/share/fish/vendor_completions.d/$prog.fish ] || fail "no fish completion for $prog"
done
/usr/bin/docker-credential-lava version | grep -q "^docker-credential-lava " || fail "helper version"
zcat /usr/share/man/man1/docker-credential-lava.1.gz | grep -q "credHelpers" || fail "man page content"
[ -f /usr/share/doc/lava-docker/copyright ] || fail "no license"
[ -f /usr/share/doc/lava-docker/examples/connections.json ] || fail "no example connections"
[ -f /usr/share/doc/lava-docker/docs/credential-helper.md ] || fail "no docs"
got=$(printf 'docker.io' | env -i PATH=/usr/bin:/bin \
  LAVA_CONNECTIONS=/usr/share/doc/lava-docker/examples/connections.json \
  LAVA_DOCKER_CACHE_DIR="$(mktemp -d)/c" /usr/bin/docker-credential-lava get)
[ "$got" = '{"ServerURL":"docker.io","Username":"","Secret":""}' ] || fail "installed get answered: $got"
missing=$(printf 'ghcr.io' | env -i PATH=/usr/bin:/bin \
  LAVA_CONNECTIONS=/usr/share/doc/lava-docker/examples/connections.json /usr/bin/docker-credential-lava get || true)
[ "$missing" = "credentials not found in native keychain" ] || fail "installed get for an unknown host: $missing"
[ ! -e "$HOME/.docker/config.json" ] || ! grep -q '"lava"' "$HOME/.docker/config.json" || fail "the package edited a docker config"

deb_files=$(dpkg-deb -c "$deb" | awk '$1 !~ /^d/ {print $NF}' | sed 's|^\./|/|' | sort)
dpkg -r lava-docker >/dev/null
for f in $deb_files; do [ ! -e "$f" ] || fail "$f left behind after dpkg -r"; done
[ ! -d /usr/share/doc/lava-docker ] || fail "/usr/share/doc/lava-docker left behind"

rpm_files=$(rpm -qlp "$rpm" 2>/dev/null | while read -r f; do case "$f" in /usr/share/doc/lava-docker|/usr/share/doc/lava-docker/docs|/usr/share/doc/lava-docker/examples) ;; *) echo "$f";; esac; done | sort)
if [ "$deb_files" != "$rpm_files" ]; then
  diff <(echo "$deb_files") <(echo "$rpm_files") >&2 || true
  fail "the .rpm and the .deb carry different files"
fi
echo "packaging check: $(echo "$deb_files" | wc -l) files in both packages; install, run, remove: ok"
