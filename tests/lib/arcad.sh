# arcad.sh - start and stop a private arcad for tests (sourced after common.sh).
#   arcad_start DIR REPO PORT [extra arcad options...]   (also listens on DIR/lmtp.sock)
#   arcad_stop DIR            SIGTERM, wait; returns arcad's exit status
#   arcad_kill DIR            SIGKILL (crash), wait
# The ASan build is used when present, like ARCA.
if [ -z "${ARCAD:-}" ]; then
	if [ -x "${ARCA_BIN_ASAN:-$ARCA_ROOT/build-asan}/arcad/arcad" ] && [ -z "${ARCA_NO_ASAN:-}" ]; then
		ARCAD=${ARCA_BIN_ASAN:-$ARCA_ROOT/build-asan}/arcad/arcad
	else
		ARCAD=${ARCA_BIN:-$ARCA_ROOT/build}/arcad/arcad
	fi
fi
ARCAD_FAST=${ARCA_BIN:-$ARCA_ROOT/build}/arcad/arcad

# N free TCP ports on 127.0.0.1: dovecot.sh's helper, in a subshell so that
# sourcing dovecot.sh changes nothing here.
_ARCAD_LIB=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
arcad_free_ports() {
	( . "$_ARCAD_LIB/dovecot.sh" && _dovecot_free_ports "${1:-1}" )
}

arcad_start() {
	local dir=$1 repo=$2 port=$3; shift 3
	mkdir -p "$dir"
	# the log accumulates over restarts: wait for one more "store ready"
	local before
	before=$(grep -c "store ready" "$dir/arcad.log" 2>/dev/null)
	before=${before:-0}
	"${ARCAD_BIN:-$ARCAD}" --repo "$repo" --journal-listen "127.0.0.1:$port" \
		--journal-listen "unix:$dir/lmtp.sock" --foreground --disk-reserve 10M "$@" \
		>>"$dir/arcad.log" 2>&1 &
	echo $! >"$dir/arcad.pid"
	local i
	for i in $(seq 100); do
		if [ "$(grep -c "store ready" "$dir/arcad.log" 2>/dev/null)" -gt "$before" ] &&
			python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 1).close()" 2>/dev/null; then
			return 0
		fi
		kill -0 "$(cat "$dir/arcad.pid")" 2>/dev/null || break
		sleep 0.05
	done
	echo "arcad did not start:" >&2
	tail -20 "$dir/arcad.log" >&2
	return 1
}

arcad_stop() {
	local dir=$1 pid rc
	pid=$(cat "$dir/arcad.pid" 2>/dev/null) || return 0
	kill -TERM "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	rc=$?
	rm -f "$dir/arcad.pid"
	return $rc
}

arcad_kill() {
	local dir=$1 pid
	pid=$(cat "$dir/arcad.pid" 2>/dev/null) || return 0
	# both processes at once: killing the listener first would let the
	# store begin a clean shutdown, not a crash
	kill -KILL "$pid" $(pgrep -P "$pid") 2>/dev/null
	wait "$pid" 2>/dev/null
	rm -f "$dir/arcad.pid"
	return 0
}
