#!/bin/bash
# Damage in the repository is found and named (issue 2: "arca verify ... Any
# damage -- a flipped bit, a truncated or missing file -- is reported naming
# the file, and the exit code is non-zero").
#
# A repository with two snapshots, each account in its own pack:
#   log 0 init, 1 pack A, 2 snapshot a@x, 3 pack B, 4 snapshot b@x
# Each kind of damage is made on a fresh copy (cp -a).  For each: `arca
# verify` without and with the restore key exits 4 and names the damaged
# file on stderr; a restore of the affected snapshot either fails with a
# clear error or gives exactly the source -- never wrong data; the account
# whose packs are intact still restores exactly, also when the index (a
# cache) is gone and must be rebuilt from the log.
set -u
. "$(dirname "$0")/../lib/common.sh"
T=$(test_tmpdir tamper)
# Private copies: a rebuild while the test runs must not swap the binaries.
# A: every verify and restore under test (the ASan build when there is one);
# F: setting up.
cp "$ARCA" "$T/arca" && A=$T/arca
if [ -x "$ARCA_FAST" ]; then cp "$ARCA_FAST" "$T/arca-fast" && F=$T/arca-fast; else F=$A; fi
# Debian's python3 (the tools' #! line): a version manager's shim in PATH
# can take a good part of a second to start.
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
export ARCA_PASSPHRASE=tamper-test-pass ARCA_TEST_FAST_KDF=1

$PY "$ARCA_ROOT/tests/tools/mkmaildir.py" "$T/mda" --messages 60 --big 1 --seed 11
$PY "$ARCA_ROOT/tests/tools/mkmaildir.py" "$T/mdb" --messages 40 --big 0 --seed 12
B=$T/base
"$F" init --repo "$B/repo" --restore-key "$B/rk" >/dev/null
"$F" ingest maildir --repo "$B/repo" --account a@x --quiet "$T/mda"
PA=$(cd "$B/repo" && find data -name '*.pack')
LA=$(cd "$B/repo" && find log -type f | sort)
"$F" ingest maildir --repo "$B/repo" --account b@x --quiet "$T/mdb"
PB=$(cd "$B/repo" && find data -name '*.pack' | grep -vxF "$PA")
LB=$(cd "$B/repo" && find log -type f | sort | grep -vxF "$LA")
LOG_A_LAST=$(echo "$LA" | tail -1)      # a@x's snapshot record
LOG_B_FIRST=$(echo "$LB" | head -1)     # pack B's record
LOG_LAST=$(echo "$LB" | tail -1)        # b@x's snapshot record, the last entry
check "the base repository has one pack per account and 5 log entries" \
	eval '[ "$(echo "$PA" | wc -l)" -eq 1 ] && [ "$(echo "$PB" | wc -l)" -eq 1 ] &&
	      [ "$(echo "$LA" "$LB" | wc -w)" -eq 5 ]'
check "the base repository verifies" "$A" verify --repo "$B/repo" --restore-key "$B/rk"
"$F" init --repo "$T/other/repo" --restore-key "$T/other/rk" >/dev/null

W=$T/w
# stable TEXT: TEXT with pack hashes and sizes replaced, for check names
# that are the same from run to run
stable() { sed -E 's|[0-9a-f]{2}/[0-9a-f]{64}|xx/<hash>|g; s/-s [0-9]+/-s N/' <<<"$1"; }
# damage NAME SHELL-CODE: a fresh copy of the base in $W, damaged by
# SHELL-CODE run inside $W/repo.
damage() {
	rm -rf "$W"
	cp -a "$B" "$W"
	chmod -R u+w "$W"
	(cd "$W/repo" && eval "$2")
	echo "# $1: $(stable "$2")"
}
flip() {  # flip FILE OFFSET: flip one bit; a negative offset counts from the end
	$PY -c '
import sys
p, o = sys.argv[1], int(sys.argv[2])
b = bytearray(open(p, "rb").read())
b[o] ^= 0x10
open(p, "wb").write(b)' "$1" "$2"
}
# verify_names NAME WHAT [KEYFILE]: verify exits 4 and stderr names WHAT (an
# extended regular expression)
verify_names() {
	local name=$1 what=$2 key=${3:-} rc
	if [ -n "$key" ]; then
		"$A" verify --repo "$W/repo" --restore-key "$key" >"$T/v.out" 2>"$T/v.err"
	else
		"$A" verify --repo "$W/repo" >"$T/v.out" 2>"$T/v.err"
	fi
	rc=$?
	check "$(stable "$name"): verify${key:+ --restore-key} exits 4 (got $rc) naming $(stable "$what")" \
		eval 'cat "$T/v.err"; [ $rc -eq 4 ] && grep -qE "$what" "$T/v.err"'
}
# restore_exact NAME ACCOUNT SRC: restores exactly
restore_exact() {
	rm -rf "$T/out"
	_acct=$2 _src=$3
	check "$(stable "$1"): restore of $2 gives exactly its source" \
		eval '"$A" restore maildir --repo "$W/repo" --account "$_acct" --restore-key "$W/rk" "$T/out" >/dev/null &&
		      $PY "$ARCA_ROOT/tests/tools/treecmp.py" "$_src" "$T/out"'
}
# restore_safe NAME ACCOUNT SRC: fails with an error on stderr, writing no
# wrong file -- or restores exactly
restore_safe() {
	local rc
	rm -rf "$T/out"
	"$A" restore maildir --repo "$W/repo" --account "$2" --restore-key "$W/rk" "$T/out" >/dev/null 2>"$T/r.err"
	rc=$?
	_src=$3
	if [ $rc -eq 0 ]; then
		check "$(stable "$1"): restore of $2 (it succeeded) gives exactly its source" \
			$PY "$ARCA_ROOT/tests/tools/treecmp.py" "$_src" "$T/out"
	else
		check "$(stable "$1"): restore of $2 fails with a clear error and writes no wrong file" \
			eval 'cat "$T/r.err"; [ $rc -eq 1 ] && [ "$(wc -l <"$T/r.err")" -ge 1 ] &&
			      { [ ! -d "$T/out" ] || ! diff -rq "$_src" "$T/out" | grep -v "^Only in "; }'
	fi
}
# all four: verify names WHAT (twice), AFFECTED restores safely, UNAFFECTED exactly
expect() {
	local name=$1 what=$2 affected=$3 unaffected=$4
	verify_names "$name" "$what"
	verify_names "$name" "$what" "$W/rk"
	[ -n "$affected" ] && restore_safe "$name" "$affected" "$T/md${affected%@x}"
	[ -n "$unaffected" ] && restore_exact "$name" "$unaffected" "$T/md${unaffected%@x}"
}

# ---- packs ----
size=$(stat -c %s "$B/repo/$PB")
damage "bit flipped in the middle of pack B" "flip $PB $((size / 2))"
expect "pack B, middle" "$PB" b@x a@x
damage "bit flipped in pack B's header (sealed key)" "flip $PB 60"
expect "pack B, header" "$PB" b@x a@x
damage "bit flipped in pack B's trailer" "flip $PB -40"
expect "pack B, trailer" "$PB" b@x a@x
damage "bit flipped in pack B's footer" "flip $PB -3"
expect "pack B, footer" "$PB" b@x a@x
damage "pack B truncated to half" "truncate -s $((size / 2)) $PB"
expect "pack B, truncated" "$PB" b@x a@x
damage "pack B truncated by one byte" "truncate -s $((size - 1)) $PB"
expect "pack B, one byte short" "$PB" b@x a@x
damage "pack B deleted" "rm $PB"
expect "pack B, deleted" "$PB" b@x a@x
damage "bit flipped in the middle of pack A" "flip $PA $(( $(stat -c %s "$B/repo/$PA") / 2 ))"
expect "pack A, middle" "$PA" a@x b@x
damage "pack A replaced by pack B's bytes" "cp $PB $PA"
expect "pack A, swapped" "$PA" a@x b@x

# The index is a cache: after it is lost (a new vault host, a copy from
# off-site) it is rebuilt from the log and the packs.  Damage to B must not
# keep a@x from being restored then either.
index_lost() {  # index_lost FILE SHELL-CODE
	damage "index lost, and" "rm -rf index; $2"
	restore_safe "index lost, $2" b@x "$T/mdb"
	restore_exact "index lost, $2" a@x "$T/mda"
	damage "index lost, and" "rm -rf index; $2"
	verify_names "index lost, $2" "$1" "$W/rk"
}
index_lost "$PB" "rm $PB"
index_lost "$PB" "flip $PB -40"
index_lost "$PB" "truncate -s $((size / 2)) $PB"
index_lost "$LOG_B_FIRST" "flip $LOG_B_FIRST 40"

# An extra pack file that no log entry names: a warning, not damage.
damage "an extra, unlogged pack" \
	"mkdir -p data/ee && head -c 5000 /dev/urandom >data/ee/ee$(printf '%062d' 0).pack"
for key in "" "$W/rk"; do
	if [ -n "$key" ]; then
		"$A" verify --repo "$W/repo" --restore-key "$key" >"$T/v.out" 2>"$T/v.err"
	else
		"$A" verify --repo "$W/repo" >"$T/v.out" 2>"$T/v.err"
	fi
	rc=$?
	check "extra pack: verify${key:+ --restore-key} exits 0 (got $rc) with a warning naming it" \
		eval 'cat "$T/v.err"; [ $rc -eq 0 ] && grep -i warning "$T/v.err" | grep -qF "data/ee/ee000"'
done
restore_exact "extra pack" a@x "$T/mda"
restore_exact "extra pack" b@x "$T/mdb"

# ---- the log ----
damage "bit flipped in pack B's log record" "flip $LOG_B_FIRST 40"
expect "log entry $LOG_B_FIRST flipped" "$LOG_B_FIRST" b@x a@x
damage "bit flipped in a@x's snapshot record" "flip $LOG_A_LAST -20"
expect "log entry $LOG_A_LAST flipped" "$LOG_A_LAST" a@x ""
# a missing entry is named by its file or its number ("entry 2")
seqof() { echo $((16#${1##*/})); }
damage "a log entry in the middle deleted" "rm $LOG_A_LAST"
expect "log entry $LOG_A_LAST deleted" "$LOG_A_LAST|entry $(seqof $LOG_A_LAST)\b" a@x ""
damage "the last log entry deleted" "rm $LOG_LAST"
expect "last log entry $LOG_LAST deleted" "$LOG_LAST|entry $(seqof $LOG_LAST)\b" b@x a@x
damage "the last two log entries deleted" "rm $LOG_LAST $LOG_B_FIRST"
expect "last two log entries deleted" "$LOG_B_FIRST|entry $(seqof $LOG_B_FIRST)\b" b@x a@x
damage "two log entries swapped" "mv $LOG_B_FIRST x && mv $LOG_LAST $LOG_B_FIRST && mv x $LOG_LAST"
expect "log entries swapped" "$LOG_B_FIRST" b@x a@x
damage "a log entry appended (a copy of the last)" \
	"cp $LOG_LAST ${LOG_LAST%/*}/$(printf '%016x' 5)"
expect "log entry appended" "$(printf '%016x' 5)" "" a@x

# ---- the config ----
# magic, repository id, box public key, signing public key, creation time,
# sealed secrets; truncated
for off in 2 50 70 98 150; do
	damage "bit flipped in the config at byte $off" "flip config $off"
	expect "config byte $off" "repo/config" a@x ""
done
damage "the config truncated" "truncate -s 100 config"
expect "config truncated" "repo/config" a@x ""

# ---- keys/ingest.key of another repository ----
damage "keys/ingest.key replaced by another repository's" "cp $T/other/repo/keys/ingest.key keys/ingest.key"
expect "foreign ingest.key" "keys/ingest.key" "" ""
# Restore needs only the restore key: a wrong ingest key must not stop it.
restore_exact "foreign ingest.key" a@x "$T/mda"
restore_exact "foreign ingest.key" b@x "$T/mdb"

# ---- wrong keys ----
damage "none" ":"
rm -rf "$T/out"
ARCA_PASSPHRASE=not-the-passphrase "$A" restore maildir --repo "$W/repo" --account a@x \
	--restore-key "$W/rk" "$T/out" >/dev/null 2>"$T/r.err"
rc=$?
check "wrong passphrase: restore fails (exit $rc) saying so, writing nothing" \
	eval 'cat "$T/r.err"; [ $rc -eq 1 ] && grep -qi passphrase "$T/r.err" && [ ! -e "$T/out" ]'
ARCA_PASSPHRASE=not-the-passphrase "$A" verify --repo "$W/repo" --restore-key "$W/rk" >/dev/null 2>"$T/r.err"
rc=$?
check "wrong passphrase: verify --restore-key fails (exit $rc) saying so" \
	eval 'cat "$T/r.err"; [ $rc -ne 0 ] && grep -qi passphrase "$T/r.err"'
"$A" restore maildir --repo "$W/repo" --account a@x --restore-key "$T/other/rk" "$T/out" >/dev/null 2>"$T/r.err"
rc=$?
check "another repository's restore key: restore fails (exit $rc) saying so, writing nothing" \
	eval 'cat "$T/r.err"; [ $rc -eq 1 ] && grep -qi "another repository" "$T/r.err" && [ ! -e "$T/out" ]'
"$A" verify --repo "$W/repo" --restore-key "$T/other/rk" >/dev/null 2>"$T/r.err"
rc=$?
check "another repository's restore key: verify --restore-key fails (exit $rc) saying so" \
	eval 'cat "$T/r.err"; [ $rc -ne 0 ] && grep -qi "another repository" "$T/r.err"'
"$A" restore maildir --repo "$W/repo" --account a@x --restore-key "$W/repo/keys/ingest.key" "$T/out" >/dev/null 2>"$T/r.err"
rc=$?
check "the ingest key given as restore key: restore fails (exit $rc) saying so" \
	eval 'cat "$T/r.err"; [ $rc -eq 1 ] && grep -qi "restore-key file\|restore key" "$T/r.err" && [ ! -e "$T/out" ]'
test_done
