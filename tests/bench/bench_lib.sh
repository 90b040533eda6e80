# shellcheck shell=bash
# What the benchmarks that run ferryd alone share (api_latency.sh,
# memory.sh): their start-up checks, the stand-in API server (HTTPS with a CA
# made for the run, a bearer token, a state's objects loaded through its
# control API) and the stop of one ferryd with the removal of its pins.
# Sourced; the caller sets REPO, PYTHON, P, FERRYD, CGROOT, CG, BPFFS and
# LOGS, defines warn and cleanup, and has sourced tests/stop_pid.sh and
# tests/wait.sh.

# shellcheck disable=SC2034 # WORK and STANDIN_PORT are the caller's to use
STANDIN=$REPO/tests/apiserver/standin.py
WORK=
STANDIN_PID=
STANDIN_PORT=
STANDIN_CPORT=
FERRYD_PID=
FERRYD_USED=0

# bench_start NAME: root, a cgroup2 mount, LOGS, the caller's cleanup on
# exit and on a signal, a WORK folder, a built ferryd; exits otherwise.
bench_start() {
	[ "$(id -u)" = 0 ] || { echo "$1: needs root (cgroups, BPF)" >&2; exit 1; }
	[ -n "$CGROOT" ] || { echo "$1: no cgroup2 mount in /proc/mounts" >&2; exit 1; }
	mkdir -p "$LOGS" || exit 1
	trap cleanup EXIT
	trap 'exit 130' INT TERM
	WORK=$(mktemp -d "/tmp/$P.XXXXXX") || exit 1
	[ -x "$FERRYD" ] || { warn "$FERRYD missing (make all)"; exit 1; }
}

# standin_certs DIR: DIR/pki (CA, server certificate), DIR/token and
# DIR/auth-header (the token as a curl header).
standin_certs() {
	local dir=$1 token=tok-$P-$RANDOM$RANDOM
	if ! mkdir -p "$dir" || ! bash "$REPO/tests/apiserver/mkcerts.sh" "$dir/pki" >/dev/null; then
		warn "mkcerts.sh failed"
		return 1
	fi
	printf '%s\n' "$token" >"$dir/token"
	printf 'Authorization: Bearer %s\n' "$token" >"$dir/auth-header"
	chmod 600 "$dir/token" "$dir/auth-header"
}

# standin_up DIR N LOG: starts the stand-in with DIR's certificates, room in
# its history for a state of N services, and waits until it listens; sets
# STANDIN_PID, STANDIN_PORT and STANDIN_CPORT (the control API).
standin_up() {
	local dir=$1 n=$2 log=$3 ready=$1/ready-$2.json
	rm -f "$ready"
	# shellcheck disable=SC2094 # both append: its log lines and a traceback
	"$PYTHON" "$STANDIN" --cert "$dir/pki/server.crt" --key "$dir/pki/server.key" \
		--token-file "$dir/token" --port 0 --control-port 0 --history $((2 * n + 10000)) \
		--ready-file "$ready" --log "$log" 2>>"$log" &
	STANDIN_PID=$!
	wait_until 20 eval "[ -s '$ready' ] || ! kill -0 $STANDIN_PID"
	[ -s "$ready" ] || { warn "N=$n: the stand-in is not ready (see $log)"; return 1; }
	read -r STANDIN_PORT STANDIN_CPORT < <("$PYTHON" -c 'import json, sys
j = json.load(open(sys.argv[1]))
print(j["port"], j["control_port"])' "$ready")
}

# standin_ctl METHOD PATH [CURL ARGS...]: a request to the control API;
# prints its answer.
standin_ctl() {
	local m=$1 p=$2
	shift 2
	curl -sS --fail --max-time 300 -X "$m" "$@" "http://127.0.0.1:$STANDIN_CPORT$p"
}

standin_down() {
	[ -n "$STANDIN_PID" ] && stop_pid "$STANDIN_PID"
	STANDIN_PID=
}

# ferryd_down LOG: stops ferryd and, if one ran, removes its pins (output
# of ferryd --cleanup into LOG).
ferryd_down() {
	[ -n "$FERRYD_PID" ] && stop_pid "$FERRYD_PID"
	FERRYD_PID=
	[ "$FERRYD_USED" = 1 ] || return 0
	"$FERRYD" --cleanup --bpffs "$BPFFS" --cgroup "$CG" >>"$1" 2>&1 ||
		echo "ferryd --cleanup --bpffs $BPFFS failed (see $1)" >&2
	[ -d "$BPFFS" ] && rmdir "$BPFFS" 2>/dev/null
	FERRYD_USED=0
}
