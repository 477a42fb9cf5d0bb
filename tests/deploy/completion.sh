#!/usr/bin/env bash
# The bash completion generated from the option table (issue 25), loaded in
# a bash started here and driven as bash drives it on <TAB>: commands,
# report kinds, --format's values, a command's options, file names after
# --config; and every option each command's --help lists is offered.
set -euo pipefail
: "${PI_BINARY:?run through ctest}"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$PI_BINARY" completion bash >"$dir/presence-ingest"
bash -n "$dir/presence-ingest"
touch "$dir/site.conf"

# complete LINE: what <TAB> at the end of LINE offers, sorted, one line.
complete_line() {
  bash --norc --noprofile -c '
    source "$1"
    read -r -a COMP_WORDS <<<"$2"
    [[ $2 == *" " ]] && COMP_WORDS+=("")
    COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
    COMP_LINE=$2 COMP_POINT=${#2}
    fn=$(complete -p presence-ingest | sed -n "s/.*-F \([^ ]*\) .*/\1/p")
    "$fn" presence-ingest "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
    [ ${#COMPREPLY[@]} -eq 0 ] || printf "%s\n" "${COMPREPLY[@]}" | sort | tr "\n" " "' _ "$dir/presence-ingest" "$1"
}
check() {
  local got
  got=$(complete_line "$1")
  [ "$got" = "$2" ] || { echo "'$1<TAB>': got '$got', expected '$2'" >&2; exit 1; }
  echo "ok: '$1<TAB>' -> $2"
}
check "presence-ingest rep" "replay report "
check "presence-ingest report " "availability flapping fleet outages reasons sessions status uptime "
check "presence-ingest report up" "uptime "
check "presence-ingest report --format " "csv json table "
check "presence-ingest report --format c" "csv "
check "presence-ingest run --log-format " "json logfmt "
check "presence-ingest report --since " ""
check "presence-ingest migrate --" "--config --help --log-format --log-level --move-batch --move-legacy --pg "
check "presence-ingest run --config $dir/si" "$dir/site.conf "
check "presence-ingest completion " "bash "

# Every option of every command's --help completes after that command.
for cmd in run replay load migrate report retention; do
  got=" $(complete_line "presence-ingest $cmd --")"
  help=$("$PI_BINARY" "$cmd" --help)
  for opt in $(grep -oE '^  --[a-z-]+' <<<"$help"); do
    [[ $got == *" $opt "* ]] || { echo "$cmd: $opt not completed" >&2; exit 1; }
  done
done
echo "ok: every option of every command's --help completes"
