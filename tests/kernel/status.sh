#!/usr/bin/env bash
# ferryctl status, what tests and scripts poll: the generation, applied
# time and agent counters equal ferry_state's (read here with the raw bpf
# syscall), with ferryd running and stopped; the default status costs the
# same number of bpf syscalls at 3 and at 300 service ports (it reads no
# map's entries: a walk key by key took 250 ms at 10,000 services), and the
# per-map entry counts appear on request (--maps), matching what was
# programmed; the tcx feature is on where a tc program of the per-packet
# path is a tcx link, off (and why) where it is a clsact filter.
# shellcheck disable=SC2317 # functions run through wait_until
# shellcheck source=tests/lib.sh
source "$(dirname "$0")/../lib.sh"

topology_up
SRC=$WORK/services.json

# render N: N Services (10.96.71.0/24 and up, TCP 80), 2 endpoints each.
render() {
	"$PYTHON" - "$1" <<'PY'
import ipaddress, json, sys
n = int(sys.argv[1])
items = []
for i in range(n):
    vip = str(ipaddress.ip_address("10.96.71.1") + i)
    items.append({"apiVersion": "v1", "kind": "Service",
                  "metadata": {"name": "st-%d" % i, "namespace": "status"},
                  "spec": {"clusterIP": vip, "ports": [{"name": "http", "port": 80,
                                                        "protocol": "TCP", "targetPort": 8080}]}})
    items.append({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                  "metadata": {"name": "st-%d-1" % i, "namespace": "status",
                               "labels": {"kubernetes.io/service-name": "st-%d" % i}},
                  "addressType": "IPv4", "ports": [{"name": "http", "port": 8080}],
                  "endpoints": [{"addresses": ["198.18.71.1"]}, {"addresses": ["198.18.71.2"]}]})
json.dump({"apiVersion": "v1", "kind": "List", "items": items}, sys.stdout)
PY
}

# same_as_state: "same" when ferryctl status's generation, applied time and
# agent figures equal ferry_state's raw struct agent_state, else the two.
same_as_state() {
	"$FERRYCTL" --bpffs "$BPFFS" status -o json | "$PYTHON" -c "$FERRY_STATE_PY"'
import datetime, json, struct
j = json.load(sys.stdin)
st = StateMap(sys.argv[1])
st._lookup()
(gen, ns, layout, pid, perr, skip, full, ign, svcs, backs) = struct.unpack_from("QQIIQQQQQQ", st.val, 0)
when = datetime.datetime.fromtimestamp(ns // 10**9, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
a = j["agent"]
want = [gen, gen, when, layout, pid, perr, skip, full, ign, svcs, backs]
got = [j["generation"], a["generation"], a["applied_at"], a["layout_version"], a["ferryd_pid"],
       a["parse_errors"], a["objects_skipped"], a["map_full_errors"], a["fields_ignored"],
       a["services"], a["backends"]]
print("same" if want == got else "state %s, status %s" % (want, got))' "$BPFFS/ferry_state"
}

# bpf_calls ARGS...: how many bpf(2) calls `ferryctl status ARGS` makes.
bpf_calls() {
	strace -f -c -e trace=bpf "$FERRYCTL" --bpffs "$BPFFS" status "$@" 2>&1 >/dev/null |
		awk '$NF == "bpf" {print $4}'
}

render 3 | write_source "$SRC"
ferryd_start "$SRC" || finish

expect "status: generation, applied time and agent figures equal ferry_state's" "$(same_as_state)" same
expect "status: 3 service ports, 6 backends programmed" \
	"$(status_get '"%d %d" % (j["agent"]["services"], j["agent"]["backends"])')" "3 6"
expect "status: every datapath counter is listed" \
	"$(status_get 'len(j["counters"]) >= 24 and all(isinstance(v, int) for v in j["counters"].values())')" True
expect "status: maps' capacity and memory without --maps, and no entry counts" \
	"$(status_get 'all("max_entries" in m and m["memory_bytes"] >= 0 and "entries" not in m for m in j["maps"])')" True
expect "status --maps: entries of the service maps (2 keys per port: its own and its address's port-0 marker; 6 backends, inline: no slots)" \
	"$(map_entries)" "ferry_services4=6 ferry_services6=0 ferry_slots=0 ferry_backends=6 ferry_affinity=0"
expect_match "status (text): the generation line" \
	"$("$FERRYCTL" --bpffs "$BPFFS" status)" "Generation: +$(generation) \\(applied "
calls3=$(bpf_calls -o json)
maps3=$(bpf_calls -o json --maps)

g=$(generation)
render 300 | write_source "$SRC"
wait_generation $((g + 1)) 15 || not_ok "status: the 300 Services applied" "generation still $(generation)"
expect "status at 300: agent figures equal ferry_state's" "$(same_as_state)" same
expect "status --maps at 300: entries of the service maps" \
	"$(map_entries)" "ferry_services4=600 ferry_services6=0 ferry_slots=0 ferry_backends=600 ferry_affinity=0"
calls300=$(bpf_calls -o json)
maps300=$(bpf_calls -o json --maps)
expect "status: as many bpf syscalls at 300 service ports as at 3 (walks no map)" \
	"$calls300" "$calls3"
expect "status --maps reads the maps (more bpf syscalls than without)" \
	"$([ "${maps300:-0}" -gt "${calls300:-0}" ] && echo more || echo "$calls300 -> $maps300")" more
note "bpf syscalls per status: $calls3 at 3, $calls300 at 300; with --maps $maps3 and $maps300"
# Where the kernel has every optional feature, status asks the kernel (a
# tcx query without a per-packet path here) rather than reading its BTF,
# about 10 ms a call (issue 13: status is what scripts poll).
BTF_READS="status reads no kernel BTF where ferryd uses every optional feature"
if kernel_btf_has tcx && kernel_btf_has udp_reaper &&
	wait_until 30 test -e "$BPFFS/links/udp-reap"; then
	expect "$BTF_READS" "$(strace -f -e trace=openat "$FERRYCTL" --bpffs "$BPFFS" status -o json 2>&1 >/dev/null |
		grep -c /sys/kernel/btf/vmlinux)" 0
else
	ok "$BTF_READS # SKIP this kernel lacks tcx or the UDP reaper"
fi

ferryd_stop
expect "status with ferryd stopped: figures still equal ferry_state's" "$(same_as_state)" same
expect "status with ferryd stopped: says so, and keeps the generation and counts" \
	"$(status_get '"%s %d %d" % (j["agent"]["ferryd_running"], j["generation"] >= 2, j["agent"]["services"])')" \
	"False 1 300"

# --- the tcx feature, read from the per-packet path -----------------------------
# ferryd in the node namespace with one device (np1, a veth with the node
# address): with --tcx off its tc program is a clsact filter and status
# there says tcx is off, and why (the kernel's lack comes first); with the
# default, where status says the kernel has tcx, a tcx link is pinned.
if ! { ip -n "$NODE" link add np1 type veth peer name np1peer &&
	ip -n "$NODE" link set np1 up && ip -n "$NODE" link set np1peer up &&
	ip -n "$NODE" addr add 192.0.2.1/24 dev np1; }; then
	not_ok "tcx setup" "veth np1"
	finish
fi
ferryd_reset
FERRYD_NETNS=$NODE
attached() { grep -c 'north-south traffic' "$FERRYD_LOG"; }
attached_more() { [ "$(attached)" -gt "$1" ]; }
# start_np ARGS...: ferryd on np1, until it says where it serves north-south.
start_np() {
	local n
	n=$(attached)
	ferryd_start "$SRC" --node-ips 192.0.2.1 --devices np1 "$@" || finish
	# A bound, not a wait (ends when ferryd exits): verifying the per-packet
	# objects took over 15 s in a TCG guest.
	wait_until 120 eval "attached_more $n || ! kill -0 $FERRYD_PID"
	attached_more "$n" || not_ok "ferryd $* attaches within 120 s" "$(tail -n 2 "$FERRYD_LOG")"
}
tcx_status() {
	in_node "$FERRYCTL" --bpffs "$BPFFS" status -o json | "$PYTHON" -c '
import json, sys
j = json.load(sys.stdin)
t = j["features"]["tcx"]
tc = sorted("%s:%s" % (l["hook"], l["attach"]) for l in j["packet_path"] if l["hook"].startswith("tc-"))
print(t["available"], t.get("why", "-"), " ".join(tc))'
}
start_np --tcx off
why="turned off (ferryd --tcx off)"
kernel_btf_has tcx || why="the kernel lacks tcx links (BPF_TCX_INGRESS/EGRESS, Linux 6.6)"
expect "tcx off: ferryctl status says tcx is off and why, beside np1's clsact filter" \
	"$(tcx_status)" "False $why tc-egress:clsact filter tc-ingress:clsact filter"
expect_match "tcx off: ferryctl status (text) says what is missing" \
	"$(in_node "$FERRYCTL" --bpffs "$BPFFS" status)" "tcx +OFF: ${why%% (*}.*clsact filters"
ferryd_stop
start_np
TCX_ON="tcx auto: ferryctl status says tcx is on, np1's tc program a pinned tcx link"
if needs_feature tcx "$TCX_ON"; then
	expect "$TCX_ON" "$(tcx_status)" "True - tc-egress:link tc-ingress:link"
fi
ferryd_stop
FERRYD_NETNS=

finish
