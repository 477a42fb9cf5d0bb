#!/usr/bin/env bash
# manpage.sh -- presence-ingest(1) is built, current, renders with man -l
# without a warning, lists every option of lib/config/config.c's table (with
# its environment variable), every command, the exit codes, and is installed
# by `cmake --install` where `man` finds it.
set -euo pipefail

fail() { echo "FAIL: $*" >&2; exit 1; }

page=$PI_BUILD_DIR/cmd/presence-ingest/presence-ingest.1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

[ -s "$page" ] || fail "$page was not built (target manpage)"
diff <("$PI_BINARY" --print-manpage) "$page" >/dev/null ||
  fail "$page is stale: the build regenerates it from --print-manpage"

# Render as a reader would; groff's warnings (unknown requests, bad escapes)
# go to stderr.
MANWIDTH=100 man --warnings -l "$page" >"$work/page.txt" 2>"$work/warn.txt" ||
  fail "man -l $page failed: $(cat "$work/warn.txt")"
[ ! -s "$work/warn.txt" ] || fail "man -l warns: $(head -5 "$work/warn.txt")"
grep -q '^PRESENCE-INGEST(1)' "$work/page.txt" || fail "no PRESENCE-INGEST(1) title"
for section in NAME SYNOPSIS DESCRIPTION COMMANDS OPTIONS ENVIRONMENT \
  'EXIT STATUS' FILES EXAMPLES 'SEE ALSO'; do
  grep -qx "$section" "$work/page.txt" || fail "no section $section"
done

# The options, read from the table's source rows, not from the generator:
# {"name", "PRESENCE_ENV" or NULL, OPT_…
sed -n 's/^ *{"\([a-z-]*\)", \(NULL\|"\(PRESENCE_[A-Z_]*\)"\), OPT_.*/\1 \3/p' \
  "$PI_SOURCE_DIR/lib/config/config.c" >"$work/options"
n=$(wc -l <"$work/options")
[ "$n" -ge 40 ] || fail "read only $n options from config.c: the pattern no longer matches the table"
# One line per entry (an entry ends at a blank line), its lines joined.
sed -n '/^OPTIONS$/,/^ENVIRONMENT$/p' "$work/page.txt" |
  awk '/^[A-Z]/ || NF == 0 { if (e != "") print e; e = ""; next }
       { sub(/^ +/, ""); e = (e == "" ? $0 : e " " $0) }
       END { if (e != "") print e }' >"$work/options.txt"
sed -n '/^ENVIRONMENT$/,/^EXIT STATUS$/p' "$work/page.txt" >"$work/environment.txt"
while read -r name env; do
  grep -Eq "^--$name( |\$)" "$work/options.txt" ||
    fail "option --$name is not listed under OPTIONS"
  if [ -n "$env" ]; then
    grep -Eq "^--$name( .*)? Environment: $env\\." "$work/options.txt" ||
      fail "--$name's environment variable $env is not in its entry"
    grep -Eq "^ {7}$env\$" "$work/environment.txt" ||
      fail "$env is not listed under ENVIRONMENT"
  fi
done <"$work/options"
for extra in '--config FILE' '-X KEY=VALUE' '--help'; do
  grep -Eq "^$extra" "$work/options.txt" || fail "'$extra' is not under OPTIONS"
done

# The commands, as the binary's own usage lists them.
"$PI_BINARY" --help | sed -n 's/^  \([a-z]*\) .*/\1/p' >"$work/commands"
[ "$(wc -l <"$work/commands")" -ge 7 ] || fail "presence-ingest --help lists no commands"
while read -r cmd; do
  grep -Eq "^ {7}presence-ingest $cmd( |\$)" "$work/page.txt" ||
    fail "command $cmd is not in the SYNOPSIS"
done <"$work/commands"

# Exit codes 0 to 3 (cmd/presence-ingest/cmd.h).
sed -n '/^EXIT STATUS$/,/^FILES$/p' "$work/page.txt" >"$work/exit.txt"
for code in 0 1 2 3; do
  grep -Eq "^ {7}$code {6}" "$work/exit.txt" || fail "exit status $code is not described"
done

# Installed by cmake --install, where man looks.
cmake --install "$PI_BUILD_DIR" --prefix "$work/prefix" >/dev/null
cmp "$page" "$work/prefix/share/man/man1/presence-ingest.1" ||
  fail "cmake --install did not put the page in share/man/man1"
[ "$(MANPATH="$work/prefix/share/man" man -w presence-ingest)" = \
  "$work/prefix/share/man/man1/presence-ingest.1" ] ||
  fail "man -w presence-ingest does not find the installed page"

echo "ok: presence-ingest(1) lists $n options, $(wc -l <"$work/commands") commands, exit codes 0-3"
