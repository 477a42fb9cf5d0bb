#!/usr/bin/env bash
# build-deb.sh [OUTDIR] -- build the Debian package presence-ingest_*.deb
# from this tree into OUTDIR (default build/deb): dpkg-buildpackage over
# debian/, whose rules take the files from `cmake --install`. The tree is
# copied first (its tracked and new files, not build/), so the checkout
# stays clean and two builds see the same input.
#   bash deploy/build-deb.sh && apt install ./build/deb/presence-ingest_*.deb
set -euo pipefail

src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=$(realpath -m "${1:-$src/build/deb}")
version=$(sed -n '1s/^presence-ingest (\([^)]*\)).*/\1/p' "$src/debian/changelog")
project=$(sed -n 's/^project(presence-ingest VERSION \([0-9.]*\).*/\1/p' "$src/CMakeLists.txt")
if [ "$version" != "$project" ]; then
    echo "build-deb: debian/changelog is at $version but CMakeLists.txt at" \
        "$project: add a changelog entry (dch -v $project)" >&2
    exit 2
fi
for tool in dpkg-buildpackage dh; do
    command -v "$tool" >/dev/null ||
        { echo "build-deb: $tool missing (bash deploy/install-deps.sh)" >&2; exit 2; }
done

work=$(mktemp -d /tmp/presence-ingest-deb.XXXXXX)
trap 'rm -rf "$work"' EXIT
tree=$work/presence-ingest-$version
mkdir -p "$tree"
if git -C "$src" rev-parse --git-dir >/dev/null 2>&1; then
    git -C "$src" ls-files -z --cached --others --exclude-standard |
        (cd "$src" && xargs -0 sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' _) |
        tar -C "$src" --null -T - -cf - | tar -C "$tree" -xf -
else
    tar -C "$src" --exclude=./build -cf - . | tar -C "$tree" -xf -
fi
(cd "$tree" && dpkg-buildpackage -b -us -uc --no-sign) >"$work/build.log" 2>&1 ||
    { tail -n 40 "$work/build.log" >&2; echo "build-deb: dpkg-buildpackage failed" >&2; exit 1; }
mkdir -p "$out"
cp "$work"/*.deb "$work"/*.buildinfo "$out"/
cp "$work"/*.ddeb "$out"/ 2>/dev/null || true
ls "$out"/presence-ingest_"$version"_*.deb
