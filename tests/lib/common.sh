# common.sh - sourced by every integration test.
# Provides: ARCA (the arca binary to test), test_tmpdir, check, check_fails, expect_eq, test_done.
# Each check prints a TAP line "ok - NAME" or "not ok - NAME" (tests/run counts them).
: "${ARCA_ROOT:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
# The ASan+UBSan build when it exists: integration tests find memory errors too.
if [ -z "${ARCA:-}" ]; then
	if [ -x "${ARCA_BIN_ASAN:-$ARCA_ROOT/build-asan}/arca/arca" ] && [ -z "${ARCA_NO_ASAN:-}" ]; then
		ARCA=${ARCA_BIN_ASAN:-$ARCA_ROOT/build-asan}/arca/arca
	else
		ARCA=${ARCA_BIN:-$ARCA_ROOT/build}/arca/arca
	fi
fi
ARCA_FAST=${ARCA_BIN:-$ARCA_ROOT/build}/arca/arca   # for loops where ASan is too slow
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
_test_failed=0
# Every scratch directory lives under one root made here, in this shell:
# test_tmpdir runs in $(...) subshells, which can't add to a list of ours.
_test_root=$(mktemp -d "${TMPDIR:-/tmp}/arca-test-XXXXXX")
chmod 755 "$_test_root"   # Dovecot's unprivileged processes must reach into it

test_tmpdir() {
	local d
	d=$(mktemp -d "$_test_root/$1-XXXXXX")
	chmod 755 "$d"
	echo "$d"
}

_test_cleanup() {
	[ -n "${KEEP_TMP:-}" ] && return
	rm -rf "$_test_root"
}
trap _test_cleanup EXIT

# check NAME COMMAND...: run COMMAND; ok if it exits 0.
check() {
	local name=$1; shift
	if "$@" >"${TMPDIR:-/tmp}/arca-check.$$" 2>&1; then
		echo "ok - $name"
	else
		echo "not ok - $name"
		sed 's/^/    /' "${TMPDIR:-/tmp}/arca-check.$$" | tail -30
		_test_failed=1
	fi
	rm -f "${TMPDIR:-/tmp}/arca-check.$$"
}

# check_fails NAME COMMAND...: ok if COMMAND exits non-zero.
check_fails() {
	local name=$1; shift
	if "$@" >"${TMPDIR:-/tmp}/arca-check.$$" 2>&1; then
		echo "not ok - $name (it succeeded)"
		_test_failed=1
	else
		echo "ok - $name"
	fi
	rm -f "${TMPDIR:-/tmp}/arca-check.$$"
}

# expect_eq NAME GOT WANT: ok if the two strings are equal.
expect_eq() {
	if [ "$2" = "$3" ]; then echo "ok - $1"; else echo "not ok - $1 (got '$2', want '$3')"; _test_failed=1; fi
}

test_done() {
	exit $_test_failed
}
