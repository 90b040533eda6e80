# shellcheck shell=bash
# wait_until SECONDS CMD...: poll CMD every 50 ms until it succeeds; 1 when
# the time runs out. Shared by the kernel tests (tests/lib.sh) and the
# stand-in's conformance test, which runs without lib.sh.
wait_until() {
	local deadline=$((SECONDS + $1))
	shift
	until "$@" >/dev/null 2>&1; do
		[ $SECONDS -lt $deadline ] || return 1
		sleep 0.05
	done
}
