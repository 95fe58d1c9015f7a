# shellcheck shell=bash
# bench/lib.sh — what the Dovecot-facing benchmarks (bench/pull, bench/recovery)
# share: the seeded corpus (cached, same key as bench/run), a cold page cache,
# and one timed run under /usr/bin/time with the Dovecot instance's CPU.
# Expects: TOP, WORK, SEED, RUN and log(); the caller declares nothing else.
# ---- corpora (shared with bench/run: same cache key) ----
GEN=$WORK/gen-maildir
if [ ! -x "$GEN" ] || [ bench/gen-maildir.c -nt "$GEN" ]; then
	cc -O2 -o "$GEN" bench/gen-maildir.c -lm || die "cannot build the generator"
fi
TEXT=words
CORPUS_ARG=()
if [ "${BENCH_TEXT:-auto}" = auto ] && [ -f tests/lib/corpus.sh ]; then
	# shellcheck source=/dev/null
	. tests/lib/corpus.sh
	if cdir=$(corpus_dir 2>/dev/null) && [ -d "$cdir" ]; then
		TEXT=spamassassin
		CORPUS_ARG=(--corpus "$cdir")
	else
		log "real corpus unavailable; using the generator's word list"
	fi
fi
# corpus ACCOUNTS MESSAGES — prints the cached corpus directory, making it if needed
corpus() {
	local key c s
	key=a$1-m$2-s$SEED-$TEXT-$(sha256sum bench/gen-maildir.c | cut -c1-10)
	c=$WORK/corpus-$key
	if [ ! -f "$c/.done" ]; then
		log "generating corpus $key"
		rm -rf "$c" "$c.tmp"
		s=$(date +%s.%N)
		"$GEN" --accounts "$1" --messages "$2" --seed "$SEED" "${CORPUS_ARG[@]}" --out "$c.tmp" >&2 ||
			{ log "generator failed"; return 1; }
		log "generated in $(awk -v a="$s" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b - a}') s"
		mv "$c.tmp" "$c" && touch "$c/.done"
	fi
	echo "$c"
}


# CPU seconds used so far by the Dovecot instance (master, live children and
# the children it has reaped)
dc_cpu() {
	local p files=()
	for p in $DOVECOT_PID $(ps -o pid= --ppid "$DOVECOT_PID" 2>/dev/null); do
		[ -r "/proc/$p/stat" ] && files+=("/proc/$p/stat")
	done
	cat "${files[@]}" 2>/dev/null | awk -v hz="$(getconf CLK_TCK)" '
		{ sub(/^.*\) /, ""); s += $12 + $13 + $14 + $15 } END { printf "%.2f", s / hz }'
}

# ---- measurement ----
COLD=yes
cold() {
	sync
	if ! { echo 3 >/proc/sys/vm/drop_caches; } 2>/dev/null; then
		[ $COLD = yes ] && log "cannot drop the page cache: runs are WARM"
		COLD=no
	fi
}
declare -A R # R[phase.tool.metric]
MAXLOAD=0
# measure PHASE TOOL SCRIPT — cold cache, /usr/bin/time -v; wall, CPU, RSS, server CPU
measure() {
	local ph=$1 tool=$2 script=$3 tf=$RUN/time.$1.$2 out=$RUN/log.$1.$2 load c0 c1 rc
	cold
	load=$(cut -d' ' -f1 /proc/loadavg)
	awk -v l="$load" -v m="$MAXLOAD" 'BEGIN{exit !(l > m)}' && MAXLOAD=$load
	log "$tool: $ph (load average $load)"
	c0=$(dc_cpu)
	/usr/bin/time -v -o "$tf" bash "$script" >"$out" 2>&1
	rc=$?
	c1=$(dc_cpu)
	if [ $rc -ne 0 ]; then
		log "$tool $ph FAILED (exit $rc); last lines of $out:"
		tail -5 "$out" >&2
		R[$ph.$tool.wall]=fail
		return 1
	fi
	R[$ph.$tool.wall]=$(awk -F': ' '/Elapsed \(wall clock\)/ {
		n = split($2, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]; printf "%.2f", s }' "$tf")
	R[$ph.$tool.cpu]=$(awk -F': ' '/User time|System time/ {s += $2} END {printf "%.2f", s}' "$tf")
	R[$ph.$tool.rss]=$(awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2 / 1024}' "$tf")
	R[$ph.$tool.srv]=$(awk -v a="$c0" -v b="$c1" 'BEGIN{printf "%.2f", b - a}')
	log "$tool: $ph ${R[$ph.$tool.wall]} s wall, ${R[$ph.$tool.cpu]} s CPU, ${R[$ph.$tool.rss]} MiB, Dovecot ${R[$ph.$tool.srv]} s CPU"
}
