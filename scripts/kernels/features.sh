#!/usr/bin/env bash
# The optional features ferryd finds on the running kernel, for the kernel
# matrix: starts ferryd (defaults: every feature on "auto") on an empty
# source in a cgroup of its own, and prints one line per feature from
# /metrics and ferryctl status:
#   feature NAME 1|0 [WHY; what the user loses]   (from ferryd's log)
# Run as root, on the kernel under test (scripts/kernels/matrix.sh runs it in
# each guest). Reuses tests/lib.sh (its cleanup removes what it made).
LOGDIR=${LOGDIR:-${BUILD:-build}/test-logs/kernel-features}
# shellcheck source=tests/lib.sh
source "$(dirname "$0")/../../tests/lib.sh"
# shellcheck source=tests/helpers/observe_lib.sh
source "$REPO/tests/helpers/observe_lib.sh"

need_root
mkdir "$CG" || exit 1
: >"$WORK/empty.yaml"
obs_ports
ferryd_start "$WORK/empty.yaml" --metrics-addr "127.0.0.1:$MPORT" || { tail -n 5 "$FERRYD_LOG"; exit 1; }
# WHY and what is lost: ferryd's warning 'NAME not used (WHY): LOSS'.
curl -sS --max-time 10 "$MURL/metrics" |
	sed -n 's/^ferry_feature_available{feature="\([a-z_]*\)"} \([01]\)$/\1 \2/p' |
	while read -r name on; do
		why=
		[ "$on" = 1 ] || why=$(sed -n "s/.*msg=\"$name not used (\(.*\)\"\$/\1/p" "$FERRYD_LOG" | head -n 1)
		echo "feature $name $on${why:+ ${why/): /; }}"
	done
