#!/usr/bin/env bash
# The Debian package (issue 25): built twice by deploy/build-deb.sh (the two
# must be the same bytes: reproducible), lintian clean (the overrides in
# debian/ say why for each), installed on this machine with dpkg -i, and
# checked as installed: the binary from /usr/bin, the units through
# systemd-analyze verify, the conffile and its mode, the system user, the
# completion; then purged, which removes the files and the user.
# Root only (dpkg); refuses to touch a presence-ingest installed already.
set -euo pipefail
: "${PI_SOURCE_DIR:?run through ctest}" "${PI_BINARY:?}"
fail() { echo "FAIL: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || fail "needs root (dpkg -i, dpkg --purge)"
for tool in dpkg-buildpackage lintian systemd-analyze; do
  command -v "$tool" >/dev/null || fail "$tool missing (bash deploy/install-deps.sh)"
done
if dpkg-query -W -f='${Status}' presence-ingest 2>/dev/null | grep -q installed; then
  fail "presence-ingest is installed on this machine already: not touching it"
fi
dir=$(mktemp -d)
installed=0
cleanup() {
  [ $installed = 0 ] || dpkg --purge presence-ingest >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT

# cmake --install --prefix DIR keeps every file under DIR (the package's
# rules give absolute directories; a plain install must not escape).
build=$(cd "$(dirname "$PI_BINARY")/../.." && pwd)
cmake --install "$build" --prefix "$dir/prefix" >"$dir/install.out"
for f in bin/presence-ingest lib/systemd/system/presence-ingest@.service \
  etc/presence-ingest/presence-ingest.conf share/presence-ingest/sql/roles.sql \
  share/bash-completion/completions/presence-ingest; do
  [ -e "$dir/prefix/$f" ] || fail "cmake --install --prefix: no $f"
done
! grep -v "$dir/prefix" "$dir/install.out" | grep -q '^-- \(Installing\|Up-to-date\)' ||
  fail "cmake --install --prefix wrote outside it: $(grep -v "$dir/prefix" "$dir/install.out")"
echo "ok: cmake --install --prefix keeps every file under the prefix"

version=$(sed -n 's/^project(presence-ingest VERSION \([0-9.]*\).*/\1/p' "$PI_SOURCE_DIR/CMakeLists.txt")
deb=presence-ingest_${version}_$(dpkg --print-architecture).deb
start=$SECONDS
bash "$PI_SOURCE_DIR/deploy/build-deb.sh" "$dir/a" >/dev/null
echo "ok: built $deb in $((SECONDS - start)) s"
bash "$PI_SOURCE_DIR/deploy/build-deb.sh" "$dir/b" >/dev/null
if cmp -s "$dir/a/$deb" "$dir/b/$deb"; then
  echo "ok: a second build is the same bytes ($(sha256sum <"$dir/a/$deb" | cut -c1-16)…)"
else
  mkdir "$dir/xa" "$dir/xb"
  dpkg-deb -R "$dir/a/$deb" "$dir/xa"
  dpkg-deb -R "$dir/b/$deb" "$dir/xb"
  diff -r "$dir/xa" "$dir/xb" >&2 || true
  fail "two builds differ (above: the files that do)"
fi

# lintian: no error, no warning. Until the man page is installed (issue
# 21's manpage.c), no-manual-page is the one warning expected.
suppress=()
dpkg-deb -c "$dir/a/$deb" | grep -q 'usr/share/man/man1/presence-ingest' ||
  suppress=(--suppress-tags no-manual-page)
lintian --fail-on error,warning "${suppress[@]}" "$dir/a/$deb" 2>&1 |
  grep -v 'running with root privileges' | tee "$dir/lintian.out" >&2 || true
! grep -qE '^[EW]: ' "$dir/lintian.out" || fail "lintian: $(grep -E '^[EW]: ' "$dir/lintian.out")"
echo "ok: lintian${suppress[*]:+ (no-manual-page: the man page is not in yet)}"

# Depends: from the shared libraries, librdkafka >= 2.6.1 among them.
depends=$(dpkg-deb -f "$dir/a/$deb" Depends)
for want in 'librdkafka1 (>= 2.6.1)' libpq5 libjson-c5 libmicrohttpd12 libc6 adduser; do
  [[ $depends == *"$want"* ]] || fail "Depends lacks $want: $depends"
done
echo "ok: Depends: $depends"

dpkg -i "$dir/a/$deb" >"$dir/dpkg.out" 2>&1 || { cat "$dir/dpkg.out" >&2; fail "dpkg -i"; }
installed=1
[ "$(/usr/bin/presence-ingest --version)" = "presence-ingest $version" ] ||
  fail "/usr/bin/presence-ingest --version: $(/usr/bin/presence-ingest --version)"
getent passwd presence-ingest >/dev/null || fail "no presence-ingest user"
conf=/etc/presence-ingest/presence-ingest.conf
[ "$(stat -c '%a %U %G' "$conf")" = "640 root presence-ingest" ] ||
  fail "$conf is $(stat -c '%a %U %G' "$conf")"
dpkg-query -W -f='${Conffiles}\n' presence-ingest | grep -q " $conf " ||
  fail "$conf is not a conffile"
cmp -s "$conf" "$PI_SOURCE_DIR/deploy/presence-ingest.conf.sample" ||
  fail "$conf is not the sample"
for f in sql/roles.sql prometheus/alerts.yml grafana/presence-ingest.json; do
  [ -f "/usr/share/presence-ingest/$f" ] || fail "/usr/share/presence-ingest/$f missing"
done
units=/lib/systemd/system
for u in presence-ingest.service presence-ingest@.service \
  presence-ingest-retention.service presence-ingest-retention.timer; do
  [ -f "$units/$u" ] || fail "$units/$u missing"
  ! grep -q /usr/local "$units/$u" || fail "$u names /usr/local: $(grep /usr/local "$units/$u")"
done
grep -q '^ExecStart=/usr/bin/presence-ingest run --config /etc/presence-ingest/%i.conf$' \
  "$units/presence-ingest@.service" || fail "the templated unit's ExecStart"
# verify reports some problems as warnings with status 0: none allowed.
# (An instance by file, not by name: a name is looked up in every unit
# directory, /usr/local's and /etc's included.)
cp "$units/presence-ingest@.service" "$dir/presence-ingest@blue.service"
for u in presence-ingest.service presence-ingest@.service presence-ingest@blue.service \
  presence-ingest-retention.timer presence-ingest-retention.service; do
  case $u in *@blue*) arg=$dir/$u ;; *) arg=$units/$u ;; esac
  out=$(systemd-analyze verify "$arg" 2>&1) || fail "systemd-analyze verify $u: $out"
  [ -z "$out" ] || fail "systemd-analyze verify $u: $out"
done
echo "ok: systemd-analyze verify: both services (and an instance), the retention timer"
# The completion as installed, in a bash started here.
got=$(bash --norc --noprofile -c '
  source /usr/share/bash-completion/completions/presence-ingest
  COMP_WORDS=(presence-ingest rep); COMP_CWORD=1
  _presence_ingest presence-ingest rep presence-ingest
  echo "${COMPREPLY[*]}"')
[ "$got" = "replay report" ] || fail "installed completion: rep<TAB> gave '$got'"
echo "ok: installed: /usr/bin/presence-ingest $version, user, conffile 640, completion"

dpkg --purge presence-ingest >"$dir/dpkg.out" 2>&1 || { cat "$dir/dpkg.out" >&2; fail "dpkg --purge"; }
installed=0
! getent passwd presence-ingest >/dev/null || fail "the user outlived the purge"
! getent group presence-ingest >/dev/null || fail "the group outlived the purge"
[ ! -e /usr/bin/presence-ingest ] && [ ! -e /etc/presence-ingest ] &&
  [ ! -e $units/presence-ingest.service ] || fail "files outlived the purge"
echo "ok: purged: files, user and group gone ($((SECONDS - start)) s in all)"
