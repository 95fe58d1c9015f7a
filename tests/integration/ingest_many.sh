#!/bin/bash
# Many accounts in one run (`arca ingest maildir --pattern`): the next
# accounts are prepared on other threads while one is read and stored
# (arca/cmd_ingest.c, "ahead").  Every account's snapshot must be what a
# run without that (ARCA_AHEAD=0) takes, after every kind of change, and an
# account that can't be prepared must fail alone, named, without stopping
# the others.
set -u
. "$(dirname "$0")/../lib/common.sh"
T=$(test_tmpdir many)
A=$ARCA
export ARCA_PASSPHRASE=many-test-passphrase ARCA_TEST_FAST_KDF=1
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
TREECMP="$PY $ARCA_ROOT/tests/tools/treecmp.py"

N=14
for i in $(seq 1 $N); do
	d=example.test; [ $((i % 3)) -eq 0 ] && d=other.test
	layout=maildir++; [ $((i % 5)) -eq 0 ] && layout=fs
	$PY "$ARCA_ROOT/tests/tools/mkmaildir.py" "$T/mail/$d/u$i/Maildir" --messages $((20 + i * 7)) \
		--seed "$i" --big $((i % 4 == 0)) --layout $layout
done
accounts() { (cd "$T/mail" && for m in */*/Maildir; do a=${m%/Maildir}; echo "${a#*/}@${a%%/*}"; done); }

"$A" init --repo "$T/a" --restore-key "$T/rk" >/dev/null
"$A" init --repo "$T/b" --restore-key "$T/rk-b" >/dev/null

# restore_all REPO KEY OUT: every account's latest snapshot; compare with the source
restore_all() {
	rm -rf "$3"
	"$A" restore maildir --repo "$1" --restore-key "$2" --pattern "$3/%d/%n/Maildir" >/dev/null || return 1
	local bad=0 a
	for a in $(accounts); do
		$TREECMP "$T/mail/${a#*@}/${a%@*}/Maildir" "$3/${a#*@}/${a%@*}/Maildir" >/dev/null || { echo "# $a differs"; bad=1; }
	done
	return $bad
}

round() {  # round NAME: ingest with and without preparation ahead, compare both restores
	check "$1: ingest by pattern ($N accounts)" "$A" ingest maildir --quiet --repo "$T/a" --pattern "$T/mail/%d/%n/Maildir"
	check "$1: the same without preparing ahead" env ARCA_AHEAD=0 "$A" ingest maildir --quiet --repo "$T/b" --pattern "$T/mail/%d/%n/Maildir"
	check "$1: every account restores exactly" restore_all "$T/a" "$T/rk" "$T/out-a"
	check "$1: ... and so without" restore_all "$T/b" "$T/rk-b" "$T/out-b"
}
round first

# Changes in some accounts: a delivery, a flag change (rename), an expunge,
# a new folder; the others unchanged.  Folders are touched so that they are
# listed again, not taken over whole.
for i in 2 5 9 13; do
	d=example.test; [ $((i % 3)) -eq 0 ] && d=other.test
	md=$T/mail/$d/u$i/Maildir
	printf 'Subject: new %s\n\nnew mail\n' "$i" >"$md/new/1999999$i.M1P1.testhost"
	f=$(ls "$md/cur" | head -1); mv "$md/cur/$f" "$md/cur/${f%%:2,*}:2,FRS"
	gone=$(ls "$md/cur" | sed -n 2p)
	rm -f "$md/cur/$gone"   # expunged: Dovecot drops its uidlist record too
	grep -v " :${gone%%:2,*}\$" "$md/dovecot-uidlist" >"$md/uidlist.tmp"; mv "$md/uidlist.tmp" "$md/dovecot-uidlist"
done
mkdir -p "$T/mail/example.test/u4/Maildir/.Later/"{cur,new,tmp}
: >"$T/mail/example.test/u4/Maildir/.Later/maildirfolder"   # as Dovecot makes it
printf 'Subject: later\n\nlater\n' >"$T/mail/example.test/u4/Maildir/.Later/cur/1888888888.M1P1.testhost:2,S"
round changed
sleep 3   # folders quiet for 2 s: taken over whole from here
round quiet

# An account whose dovecot-uidlist can't be parsed fails, named, with exit
# 1; every other account is still ingested.
bad=$T/mail/example.test/u7/Maildir
cp "$bad/dovecot-uidlist" "$T/uidlist.good"
printf 'garbage\n' >"$bad/dovecot-uidlist"
printf 'Subject: while broken\n\nx\n' >"$T/mail/example.test/u8/Maildir/new/1777777777.M1P1.testhost"
nsnaps() { "$A" snapshots --repo "$T/a" --account "$1" --json | grep -o '"id"' | wc -l; }
before=$(nsnaps u8@example.test) before7=$(nsnaps u7@example.test)
"$A" ingest maildir --quiet --repo "$T/a" --pattern "$T/mail/%d/%n/Maildir" >"$T/out" 2>"$T/err"
rc=$?
check "a broken account: exit 1" test $rc -eq 1
check "... its error names it and the file" bash -c "grep -q 'u7@example.test' '$T/err' && grep -q 'dovecot-uidlist' '$T/err'"
check "... the others were ingested (u8 has a new snapshot)" test "$(nsnaps u8@example.test)" -eq $((before + 1))
check "... and u7 has none" test "$(nsnaps u7@example.test)" -eq "$before7"
cp "$T/uidlist.good" "$bad/dovecot-uidlist"
round repaired
check "verify" "$A" verify --repo "$T/a" --restore-key "$T/rk"
test_done
