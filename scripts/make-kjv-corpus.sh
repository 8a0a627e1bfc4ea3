#!/usr/bin/env bash
# Rebuilds data/kjv.txt.gz, the corpus the shipped model (models/hippo-kjv) was trained on: the King James
# Bible from Debian's bible-kjv-text package (public domain text), one verse per line, references removed.
# Needs Debian's bible-kjv (the program that decodes the package's compressed text): apt-get install bible-kjv
set -euo pipefail
out=${1:-data/kjv.txt.gz}
command -v bible >/dev/null || { echo "make-kjv-corpus: install Debian's bible-kjv first (apt-get install bible-kjv)" >&2; exit 1; }
bible -f "Genesis 1:1-Revelation 22:21" | sed -E 's/^[0-9]?[A-Za-z]+[0-9]+:[0-9]+ //' | gzip -9 -n > "$out.tmp"
mv "$out.tmp" "$out"
echo "wrote $out ($(zcat "$out" | wc -c) bytes of text)"
