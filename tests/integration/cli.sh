#!/bin/bash
# The arca command line as issue 2 spells it: every command and its checks.
set -u
. "$(dirname "$0")/../lib/common.sh"
T=$(test_tmpdir cli)
A=$ARCA
export ARCA_PASSPHRASE=cli-test-passphrase ARCA_TEST_FAST_KDF=1
PY=/usr/bin/python3

check "arca --help lists the commands" bash -c "'$A' --help | grep -q restore"
for c in init ingest snapshots ls diff restore verify; do
	check "arca $c --help" bash -c "'$A' $c --help | grep -q usage || '$A' $c --help | grep -q 'arca $c'"
done
check_fails "an unknown command is refused" "$A" frobnicate
"$A" restore maildir >/dev/null 2>&1; check "a usage error exits 2" test $? -eq 2

check "init" "$A" init --repo "$T/repo" --restore-key "$T/rk"
check_fails "init refuses an existing repository" "$A" init --repo "$T/repo" --restore-key "$T/rk2"
check_fails "init refuses to overwrite a restore key" "$A" init --repo "$T/other" --restore-key "$T/rk"
check "the restore key file is private (0600)" test "$(stat -c %a "$T/rk")" = 600
check "keys/ingest.key is private (0600)" test "$(stat -c %a "$T/repo/keys/ingest.key")" = 600

$PY "$ARCA_ROOT/tests/tools/mkmaildir.py" "$T/mail/example.test/alice/Maildir" --messages 60 --seed 1 --big 1
$PY "$ARCA_ROOT/tests/tools/mkmaildir.py" "$T/mail/example.test/bob/Maildir" --messages 40 --seed 2 --big 0
$PY "$ARCA_ROOT/tests/tools/mkmaildir.py" "$T/mail/other.test/carol/Maildir" --messages 30 --seed 3 --big 0 --layout fs

check "ingest one account (issue's form)" "$A" ingest maildir --repo "$T/repo" --account alice@example.test "$T/mail/example.test/alice/Maildir"
check "ingest every account by pattern" "$A" ingest maildir --repo "$T/repo" --pattern "$T/mail/%d/%n/Maildir" --json
"$A" snapshots --repo "$T/repo" --json >"$T/snaps.json"
check "snapshots --json: 4 snapshots with id, account, RFC 3339 time with fractions, sorted" $PY - "$T/snaps.json" <<'PYEOF'
import json, re, sys
s = json.load(open(sys.argv[1]))
assert len(s) == 4, s
for x in s:
    assert re.fullmatch(r'[0-9a-f]{64}', x['id']), x
    assert re.fullmatch(r'\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z', x['time']), x
assert [x['time'] for x in s] == sorted(x['time'] for x in s)
assert sorted(x['account'] for x in s) == ['alice@example.test', 'alice@example.test', 'bob@example.test', 'carol@other.test']
PYEOF
check "snapshots --account filters" bash -c "'$A' snapshots --repo '$T/repo' --account bob@example.test --json | grep -c '\"id\"' | grep -qx 1"

# a change, then a third snapshot of alice
md=$T/mail/example.test/alice/Maildir
f=$(ls "$md/cur" | head -1); mv "$md/cur/$f" "$md/cur/${f%%:2,*}:2,FS"
gone=$(ls "$md/cur" | sed -n 3p)
rm "$md/cur/$gone"   # an expunge, as Dovecot does it: the file and its uidlist record
grep -v -F ":${gone%%:2,*}" "$md/dovecot-uidlist" >"$T/ul" && cat "$T/ul" >"$md/dovecot-uidlist"
sleep 0.01
check "ingest after a change" "$A" ingest maildir --repo "$T/repo" --account alice@example.test "$md"
first=$($PY -c "import json,sys; print([x for x in json.load(open(sys.argv[1])) if x['account']=='alice@example.test'][0]['id'])" "$T/snaps.json")
t1=$($PY -c "import json,sys; print([x for x in json.load(open(sys.argv[1])) if x['account']=='alice@example.test'][0]['time'])" "$T/snaps.json")
check "diff between the first and the last snapshot" bash -c \
	"'$A' diff --repo '$T/repo' --account alice@example.test --restore-key '$T/rk' ${first:0:12} 2099-01-01T00:00:00Z | tail -1 | grep -q '0 added, 1 removed, 1 changed'"
check "ls lists folders with UIDVALIDITY" bash -c \
	"'$A' ls --repo '$T/repo' --account alice@example.test --restore-key '$T/rk' | grep -q 'uidvalidity='"

# restore by --snapshot and by --at: the old state comes back exactly
cp -a "$md" "$T/alice-now"
check "restore --snapshot ID (a prefix)" "$A" restore maildir --repo "$T/repo" --account alice@example.test \
	--restore-key "$T/rk" --snapshot "${first:0:10}" "$T/r1"
check "restore --at TIME picks the snapshot of that time" "$A" restore maildir --repo "$T/repo" \
	--account alice@example.test --restore-key "$T/rk" --at "$t1" "$T/r2"
check "both give the same Maildir" $PY "$ARCA_ROOT/tests/tools/treecmp.py" "$T/r1" "$T/r2"
check "the latest snapshot restores the current Maildir exactly" "$A" restore maildir --repo "$T/repo" \
	--account alice@example.test --restore-key "$T/rk" "$T/r3"
check "... compared" $PY "$ARCA_ROOT/tests/tools/treecmp.py" "$T/alice-now" "$T/r3"
check_fails "restore refuses a non-empty destination" "$A" restore maildir --repo "$T/repo" \
	--account alice@example.test --restore-key "$T/rk" "$T/r3"
check "restore --force writes into it" "$A" restore maildir --repo "$T/repo" \
	--account alice@example.test --restore-key "$T/rk" --force "$T/r3"
check "... and it is still exact" $PY "$ARCA_ROOT/tests/tools/treecmp.py" "$T/alice-now" "$T/r3"
check_fails "restore of an unknown account fails" "$A" restore maildir --repo "$T/repo" \
	--account nobody@example.test --restore-key "$T/rk" "$T/r4"
check_fails "a bad --at is refused" "$A" restore maildir --repo "$T/repo" \
	--account alice@example.test --restore-key "$T/rk" --at yesterday "$T/r5"
check_fails "--at before the first snapshot finds nothing" "$A" restore maildir --repo "$T/repo" \
	--account alice@example.test --restore-key "$T/rk" --at 2001-01-01T00:00:00Z "$T/r6"

check "restore --pattern: every account at once" "$A" restore maildir --repo "$T/repo" \
	--restore-key "$T/rk" --pattern "$T/all/%d/%n/Maildir"
for a in example.test/alice example.test/bob other.test/carol; do
	check "  $a exact" $PY "$ARCA_ROOT/tests/tools/treecmp.py" "$T/mail/$a/Maildir" "$T/all/$a/Maildir"
done

# Unchanged folders are taken over without listing them; any change in one
# (a delivery, a flag change, an expunge) must still be seen.
bob=$T/mail/example.test/bob/Maildir
quiet() {  # age the folders (not the messages: their mtime is their date)
	find "$bob" \( -type d -o -name 'dovecot-*' -o -name subscriptions \) -exec touch -h -d "$1" {} +
}
quiet '2 hours ago'
check "ingest of quiet folders" "$A" ingest maildir --repo "$T/repo" --account bob@example.test "$bob"
check "again: nothing read" bash -c "'$A' ingest maildir --repo '$T/repo' --account bob@example.test --json '$bob' | grep -q '\"files_read\":0'"
printf 'Subject: late\n\nlate mail\n' >"$bob/.Sent/new/1999999999.M1P1.testhost"
f=$(ls "$bob/cur" | head -1); mv "$bob/cur/$f" "$bob/cur/${f%%:2,*}:2,RS"   # a flag change
check "a delivery and a rename in quiet folders are seen" bash -c \
	"'$A' ingest maildir --repo '$T/repo' --account bob@example.test --json '$bob' | grep -q '\"files_read\":1'"
quiet '1 hour ago'
check "and the next ingest (folders quiet again)" "$A" ingest maildir --repo "$T/repo" --account bob@example.test "$bob"
check "restore of reused folders" "$A" restore maildir --repo "$T/repo" --account bob@example.test \
	--restore-key "$T/rk" "$T/bob-out"
check "  exact, with the late mail and the rename" $PY "$ARCA_ROOT/tests/tools/treecmp.py" "$bob" "$T/bob-out"

# The ingest trusts its cache without looking each entry's content up in the
# index; an index from before that rule is checked once (docs/format/index.md,
# `file`).  An entry naming content the index doesn't have (what a pack lost
# by an older version could leave) is dropped, and its message read again.
check "the index says its ingest cache was checked" bash -c "mdb_dump -p -s meta '$T/repo/index' | grep -q filecache-trusted"
$PY - "$T/repo/index" bob@example.test "$T/bad.dump" <<'EOF'
import subprocess, sys
idx, acct, out = sys.argv[1], sys.argv[2].encode(), sys.argv[3]
lines = subprocess.run(['mdb_dump', '-s', 'file', idx], check=True, capture_output=True,
                       text=True).stdout.split('\n')
end = lines.index('HEADER=END')
recs = lines[end + 1:lines.index('DATA=END')]
pairs = [(bytes.fromhex(recs[i].strip()), bytes.fromhex(recs[i + 1].strip())) for i in range(0, len(recs), 2)]
key, val = next((k, v) for k, v in pairs if k.startswith(acct + b'\0') and len(v) == 53)
with open(out, 'w') as f:
    f.write('\n'.join(lines[:end + 1]) + '\n')
    f.write(' ' + key.hex() + '\n ' + (val[:21] + bytes(32)).hex() + '\nDATA=END\n')
EOF
mdb_load -s file -f "$T/bad.dump" "$T/repo/index"
printf 'VERSION=3\nformat=print\ntype=btree\nHEADER=END\n filecache-trusted\n 0\nDATA=END\n' |
	mdb_load -s meta "$T/repo/index"   # "not checked yet", as in an older index
find "$bob" -name cur -type d -exec touch {} +   # listed again, not taken over whole
check "an entry naming missing content: its message is read again" bash -c \
	"'$A' ingest maildir --repo '$T/repo' --account bob@example.test --json '$bob' | grep -q '\"files_read\":1'"
check "... once: the next ingest reads nothing" bash -c \
	"'$A' ingest maildir --repo '$T/repo' --account bob@example.test --json '$bob' | grep -q '\"files_read\":0'"
rm -rf "$T/bob-out"
check "... and the restore is exact" bash -c "'$A' restore maildir --repo '$T/repo' --account bob@example.test \
	--restore-key '$T/rk' '$T/bob-out' >/dev/null && $PY '$ARCA_ROOT/tests/tools/treecmp.py' '$bob' '$T/bob-out'"

ARCA_PASSPHRASE=wrong-passphrase "$A" restore maildir --repo "$T/repo" --account bob@example.test \
	--restore-key "$T/rk" "$T/r7" 2>"$T/err"
check "a wrong passphrase is refused with a clear message" grep -q "wrong passphrase" "$T/err"
check "nothing was written with a wrong passphrase" test ! -e "$T/r7"
check "verify" "$A" verify --repo "$T/repo" --restore-key "$T/rk"
check "verify --json says ok" bash -c "'$A' verify --repo '$T/repo' --json | grep -q '\"ok\":true'"

# The object-id function is the repository's choice, fixed at init (config
# byte 92): each one ingests, verifies and restores exactly (alice has a
# message over 1 MiB: chunked with the gear table of that function).
idmd=$T/mail/example.test/alice/Maildir
for h in blake2b:1 hmac-sha256:2; do
	name=${h%:*} byte=${h#*:}
	check "init --id-hash $name" bash -c "'$A' init --repo '$T/id-$name' --restore-key '$T/rk-$name' --id-hash $name | grep -q 'object ids: $name'"
	check "  the config names it ($byte)" test "$(od -An -tu1 -j92 -N1 "$T/id-$name/config" | tr -d ' ')" = "$byte"
	check "  ingest" "$A" ingest maildir --repo "$T/id-$name" --account alice@example.test "$idmd"
	check "  verify with the key (every id recomputed)" "$A" verify --repo "$T/id-$name" --restore-key "$T/rk-$name"
	check "  restore exact" bash -c "'$A' restore maildir --repo '$T/id-$name' --account alice@example.test \
		--restore-key '$T/rk-$name' '$T/id-out-$name' >/dev/null && $PY '$ARCA_ROOT/tests/tools/treecmp.py' '$idmd' '$T/id-out-$name'"
done
"$A" init --repo "$T/id-bad" --restore-key "$T/rk-bad" --id-hash md5 >/dev/null 2>&1
check "init --id-hash with an unknown name is a usage error" test $? -eq 2
check "... and creates nothing" test ! -e "$T/id-bad"
cp -a "$T/id-blake2b" "$T/id-unknown"
printf '\003' | dd of="$T/id-unknown/config" bs=1 seek=92 conv=notrunc status=none
check_fails "a config naming an unknown id algorithm is refused" "$A" ingest maildir --repo "$T/id-unknown" \
	--account alice@example.test "$idmd"
"$A" snapshots --repo "$T/id-unknown" --json >/dev/null 2>"$T/id-err"
check "  with a clear message" grep -q "unknown id algorithm 3" "$T/id-err"

# A file rewritten in place under its own name, size and mtime (Dovecot never
# does that) is taken as unchanged; --reread reads every message again.
rw=$T/rw-md
cp -a "$T/mail/example.test/bob/Maildir" "$rw"
"$A" ingest maildir --repo "$T/repo" --account rw@example.test "$rw" >/dev/null
f=$(ls "$rw/cur" | head -1)
cp -p "$rw/cur/$f" "$T/rw-before"
$PY - "$rw/cur/$f" <<'EOF'
import sys
p = sys.argv[1]
b = open(p, 'rb').read()
open(p, 'r+b').write(b.swapcase())   # same length, other bytes
EOF
touch -r "$T/rw-before" "$rw/cur/$f"
check "  (the rewrite changed the bytes)" bash -c "! cmp -s '$T/rw-before' '$rw/cur/$f'"
check "an ingest after a rewrite in place keeps the content first stored" bash -c \
	"'$A' ingest maildir --repo '$T/repo' --account rw@example.test '$rw' >/dev/null &&
	 '$A' restore maildir --repo '$T/repo' --account rw@example.test --restore-key '$T/rk' '$T/rw1' >/dev/null &&
	 cmp '$T/rw-before' '$T/rw1/cur/$f'"
check "ingest --reread stores the new content" bash -c \
	"'$A' ingest maildir --repo '$T/repo' --account rw@example.test --reread --json '$rw' >'$T/rw.json' &&
	 '$A' restore maildir --repo '$T/repo' --account rw@example.test --restore-key '$T/rk' '$T/rw2' >/dev/null &&
	 cmp '$rw/cur/$f' '$T/rw2/cur/$f'"
check "  it read every message" $PY -c "
import json, os, sys
j = json.load(open(sys.argv[1]))
n = sum(len(fs) for d, _, fs in os.walk(sys.argv[2]) if os.path.basename(d) in ('cur', 'new'))
assert j['files_read'] == n, (j['files_read'], n)" "$T/rw.json" "$rw"
check "  and the restore is exact" $PY "$ARCA_ROOT/tests/tools/treecmp.py" "$rw" "$T/rw2"
test_done
