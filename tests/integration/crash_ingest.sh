#!/bin/bash
# Crash test (issue 2): kill `arca ingest` at 200+ points, chosen at random
# among every write, fsync-before-rename and index commit it makes
# (ARCA_FAULT=crash:N, lib/faultinject.h), plus kills at random moments.
# After each kill the repository must verify; re-runs must complete and give
# the same result, and the final restore must equal the source exactly.
set -u
. "$(dirname "$0")/../lib/common.sh"
T=$(test_tmpdir crash)
A=$ARCA
export ARCA_PASSPHRASE=crash-test-pass ARCA_TEST_FAST_KDF=1
POINTS=${CRASH_POINTS:-200}

python3 "$ARCA_ROOT/tests/tools/mkmaildir.py" "$T/md" --messages 250 --big 2 --seed 7
"$A" init --repo "$T/repo" --restore-key "$T/rk" >/dev/null

# Count the crash points of one complete first run, in a scratch repository.
"$A" init --repo "$T/count" --restore-key "$T/rk-count" >/dev/null
total=0
lo=1; hi=100000
while [ $lo -lt $hi ]; do   # the first N at which the run is not killed
	mid=$(( (lo + hi) / 2 ))
	rm -rf "$T/count" "$T/rk-count"
	"$A" init --repo "$T/count" --restore-key "$T/rk-count" >/dev/null
	if ( ARCA_FAULT=crash:$mid "$A" ingest maildir --repo "$T/count" --account a@x --quiet "$T/md" >/dev/null 2>&1; exit $? ) 2>/dev/null; then
		hi=$mid
	else
		lo=$((mid + 1))
	fi
done
total=$((lo - 1))
check "a first ingest has many crash points ($total)" test "$total" -gt 200

killed=0; bad_verify=0; bad_rerun=0; bad_result=0; resets=0
for i in $(seq 1 "$POINTS"); do
	n=$(( (RANDOM * 32768 + RANDOM) % total + 1 ))
	( ARCA_FAULT=crash:$n "$A" ingest maildir --repo "$T/repo" --account a@x --quiet "$T/md" >/dev/null; exit $? ) 2>"$T/err"
	rc=$?
	if [ $rc -eq 137 ]; then
		killed=$((killed + 1))
	elif [ $rc -ne 0 ]; then
		echo "ingest failed instead of being killed (crash:$n):"; cat "$T/err"
	fi
	if ! "$A" verify --repo "$T/repo" >"$T/verify.out" 2>&1; then
		bad_verify=$((bad_verify + 1))
		echo "after crash:$n:"; cat "$T/verify.out"
	fi
	# Every 10th kill, and whenever a run got through, finish the job, check
	# the result, and start again from an empty repository so that later
	# kills again fall anywhere in a first ingest.
	if [ $rc -ne 137 ] || [ $((i % 10)) -eq 0 ]; then
		if ! "$A" ingest maildir --repo "$T/repo" --account a@x --quiet "$T/md" 2>"$T/err"; then
			bad_rerun=$((bad_rerun + 1)); cat "$T/err"
		fi
		rm -rf "$T/out"
		if ! { "$A" restore maildir --repo "$T/repo" --account a@x --restore-key "$T/rk" "$T/out" >/dev/null &&
		       python3 "$ARCA_ROOT/tests/tools/treecmp.py" "$T/md" "$T/out" >"$T/cmp"; }; then
			bad_result=$((bad_result + 1)); tail -5 "$T/cmp"
		fi
		rm -rf "$T/repo" "$T/rk"
		"$A" init --repo "$T/repo" --restore-key "$T/rk" >/dev/null
		resets=$((resets + 1))
	fi
done
check "ingest was killed at $killed of $POINTS random crash points" test "$killed" -ge $((POINTS * 9 / 10))
check "the repository verified after every kill" test "$bad_verify" -eq 0
check "every re-run after kills completed ($resets)" test "$bad_rerun" -eq 0
check "every re-run restored exactly the source" test "$bad_result" -eq 0

# Kills at random moments (SIGKILL from outside, not at a chosen point).
bad=0
for i in $(seq 1 30); do
	( "$A" ingest maildir --repo "$T/repo" --account b@x --quiet "$T/md" >/dev/null 2>&1 &
	  pid=$!
	  sleep "0.0$((RANDOM % 10))"
	  kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null ) 2>/dev/null
	"$A" verify --repo "$T/repo" >"$T/verify.out" 2>&1 || { bad=$((bad + 1)); cat "$T/verify.out"; }
done
check "the repository verified after 30 kills at random moments" test "$bad" -eq 0

check "a final ingest completes" "$A" ingest maildir --repo "$T/repo" --account a@x --quiet "$T/md"
check "verify with the restore key finds everything intact" \
	"$A" verify --repo "$T/repo" --restore-key "$T/rk"
rm -rf "$T/out"
check "restore after all the crashes" \
	"$A" restore maildir --repo "$T/repo" --account a@x --restore-key "$T/rk" "$T/out"
check "restored Maildir equals the source (bytes, names, mtimes)" \
	python3 "$ARCA_ROOT/tests/tools/treecmp.py" "$T/md" "$T/out"
test_done
