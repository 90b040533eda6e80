# shellcheck shell=bash
# nodeport_modes GROUP MODE... : one run of tests/kernel/nodeport.sh per
# MODE at once, each its own topology, names and cleanup (lib.sh names them
# by pid). MODE is "NAME VAR=VALUE ...": the run's environment, its logs in
# build/test-logs/GROUP/NAME. The runs wait mostly on the network (timeouts
# that prove a drop), so two at once take the time of one. Their output is
# printed run by run, in the order given; exit 1 when one failed.
nodeport_modes() {
	local group=$1 repo out mode name i rc=0
	shift
	repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
	out=$(mktemp -d "/tmp/np-modes.XXXXXX") || return 1
	NP_MODE_PIDS=()
	# A signal to this script alone (not its process group) reaches the runs
	# too, whose own traps clean up.
	trap 'kill -TERM "${NP_MODE_PIDS[@]}" 2>/dev/null; wait; rm -rf "$out"; exit 130' INT TERM
	for mode in "$@"; do
		read -r name _ <<<"$mode"
		# shellcheck disable=SC2086 # MODE's words are VAR=VALUE assignments
		env LOGDIR="${BUILD:-$repo/build}/test-logs/$group/$name" ${mode#"$name"} \
			bash "$repo/tests/kernel/nodeport.sh" >"$out/$name" 2>&1 &
		NP_MODE_PIDS+=($!)
	done
	i=0
	for mode in "$@"; do
		read -r name _ <<<"$mode"
		wait "${NP_MODE_PIDS[$i]}" || rc=1
		cat "$out/$name"
		i=$((i + 1))
	done
	trap - INT TERM
	rm -rf "$out"
	return $rc
}
