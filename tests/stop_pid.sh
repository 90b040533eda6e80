# shellcheck shell=bash
# stop_pid PID: SIGTERM, wait up to 5 s for the process to go, then SIGKILL.
# Shared by the kernel tests (tests/lib.sh) and the benchmark
# (tests/bench/run.sh); both end only processes they started, by pid.
stop_pid() {
	local pid=$1 i
	kill "$pid" 2>/dev/null || return 0
	for ((i = 0; i < 100; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	kill -9 "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	return 0
}
