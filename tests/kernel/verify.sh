#!/usr/bin/env bash
# The socket LB's programs load on a thread of their own while ferryd reads
# its source and fills fresh maps (issue 13, cold start). A program the
# kernel refuses (ferryd without CAP_PERFMON, as in features.sh) is still a
# clean refusal:
#  - cold: ferryd exits non-zero, the log names the program the verifier
#    refused and blames no map, nothing is pinned under --bpffs and nothing
#    is attached to the cgroup, though the refusal came while it filled
#    2,000 x 10 into its maps;
#  - restart: maps pinned by an earlier ferryd serve its programs; a ferryd
#    whose programs are refused writes nothing into them before it knows:
#    the generation, the maps' entries and the links stay as they were, and
#    the earlier programs keep serving the earlier state. A ferryd that can
#    load then applies the change.
# shellcheck source=tests/lib.sh
source "$(dirname "$0")/../lib.sh"

topology_up
pod v-1 198.18.91.1 "" --tcp 8080
pod v-2 198.18.91.2 "" --tcp 8080

SRC=$WORK/services.yaml
# svc POD: Service "vf" (TCP 80) with this one pod.
svc() {
	write_source "$SRC" <<EOF
apiVersion: v1
kind: Service
metadata: {name: vf, namespace: verify}
spec:
  clusterIP: 10.96.91.10
  ports:
  - {name: tcp, port: 80, protocol: TCP, targetPort: 8080}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: vf-1, namespace: verify, labels: {kubernetes.io/service-name: vf}}
addressType: IPv4
ports: [{name: tcp, port: 8080, protocol: TCP}]
endpoints: [{addresses: [198.18.91.${1#v-}]}]
EOF
}

# refused_spawn SOURCE [ARGS...]: ferryd on SOURCE without CAP_PERFMON
# (root keeps the rest): the kernel's verifier refuses its programs.
refused_spawn() {
	local src=$1
	shift
	FERRYD_USED=1
	echo "=== ferryd (without CAP_PERFMON) --source file:$src $*" >>"$FERRYD_LOG"
	setpriv --bounding-set -perfmon,-sys_admin "$FERRYD" --source "file:$src" --cgroup "$CG" \
		--bpffs "$BPFFS" --node-name node-a --metrics-addr "" --health-addr "" "$@" \
		2>>"$FERRYD_LOG" &
	FERRYD_PID=$!
}
# last_log_count TEXT: lines with TEXT in the log of the last ferryd started.
last_log_count() {
	awk '/^=== ferryd/ {n = 0} {line[n++] = $0} END {for (i = 0; i < n; i++) print line[i]}' \
		"$FERRYD_LOG" | grep -c -F -- "$1"
}
serves() { [ "$(field reply "$(probe tcp 10.96.91.10 80)")" = "$1" ]; }
pinned() { (cd "$BPFFS" 2>/dev/null && find . -mindepth 1 | sort | tr '\n' ' '); }
attached() { bpftool cgroup show "$CG" 2>/dev/null | grep -c ferry_; }
# datapath: the generation, the service maps' entries and the links' ids
# and programs, as pinned.
datapath() {
	local m l
	echo "generation $(generation)"
	for m in ferry_services4 ferry_services6 ferry_slots ferry_backends ferry_revnat ferry_state; do
		echo "$m $(bpftool -j map dump pinned "$BPFFS/$m" 2>&1 | md5sum)"
	done
	for l in "$BPFFS"/links/*; do
		echo "${l##*/} $(bpftool link show pinned "$l" 2>&1 | head -n 1)"
	done
}

# --- cold: refused while the maps fill ------------------------------------------
"$PYTHON" "$REPO/scripts/gen-cluster.py" 2000 10 >"$WORK/big.json"
refused_spawn "$WORK/big.json" --max-services 2016 --max-backends 20016
if expect_refused "cold: programs refused (no CAP_PERFMON): ferryd exits non-zero" 60; then
	expect "cold: the log names the program the verifier refused, and no map" \
		"$(last_log_count "the kernel's verifier refused BPF program ferry_") $(last_log_count "cannot create BPF map")" \
		"1 0"
	expect "cold: nothing is pinned under --bpffs" "$(pinned)" ""
	expect "cold: nothing is attached to the cgroup" "$(attached)" 0
fi
ferryd_reset

# --- restart on a serving datapath ------------------------------------------------
# Limits of a small node: datapath() dumps ferry_backends, an array over
# four times --max-backends.
SMALL=(--max-backends 256)
svc v-1
ferryd_start "$SRC" "${SMALL[@]}" || finish
expect "restart: the first ferryd serves v-1" "$(field reply "$(probe tcp 10.96.91.10 80)")" v-1
ferryd_stop
before=$(datapath)
svc v-2
refused_spawn "$SRC" "${SMALL[@]}"
if expect_refused "restart: programs refused: ferryd exits non-zero" 60; then
	expect "restart: the log names the program the verifier refused" \
		"$(last_log_count "the kernel's verifier refused BPF program ferry_")" 1
	after=$(datapath)
	if [ "$after" = "$before" ]; then
		ok "restart: generation, map entries and links are as the earlier ferryd left them"
	else
		not_ok "restart: generation, map entries and links are as the earlier ferryd left them" \
			"$(diff <(echo "$before") <(echo "$after") | tr '\n' ' ')"
	fi
	expect "restart: the earlier programs serve the earlier state (v-1)" \
		"$(field reply "$(probe tcp 10.96.91.10 80)")" v-1
fi
ferryd_start "$SRC" "${SMALL[@]}" || finish
wait_until 10 serves v-2
expect "restart: a ferryd that loads applies the change (v-2)" \
	"$(field reply "$(probe tcp 10.96.91.10 80)")" v-2

finish
