#!/usr/bin/env bash
# The kernel floor (issue 14): what ClusterIP translation cannot work
# without is checked at start; everything else is probed, used where the
# kernel has it and reported where it has not.
#  - the UDP reaper (B21, bpf_sock_destroy, Linux 6.5) is optional: with
#    --udp-reaper off (what a kernel without the kfunc gets, run here on a
#    kernel that has it) ferryd starts without loading its program, serves
#    ClusterIP TCP and UDP, says once in its log which behaviour is missing,
#    and reports udp_reaper 0 in ferryctl status and /metrics; a connected
#    UDP socket on a removed backend is left as it is. With the default it
#    reports 1 and reaps where the kernel's BTF has bpf_sock_destroy, else 0
#    and why (the cases that need it are skipped: tests/lib.sh
#    needs_feature). A restart with it off removes the pinned link of the
#    one before. The reaper is an object of its own (bpf/reaper.bpf.c) on
#    the socket LB's maps: without it, the socket LB's object has no kfunc to
#    resolve (which, for one the kernel lacks, takes libbpf 1.1 CAP_SYS_ADMIN).
#    It loads once the programs serve (its link is pinned a moment after the
#    first generation: the cases wait for it), and a restart whose first
#    apply removes a UDP backend waits for it before it publishes.
#  - refusals name the cause: no capability for BPF at all is said so (not
#    "missing kernel feature"), and a program the verifier refuses (ferryd
#    without CAP_PERFMON) is named as such, not as "cannot load";
#  - a pinned map that differs only in its flags is migrated, and the log
#    names the flags (not max_entries).
# shellcheck disable=SC2317 # functions run through wait_until
# shellcheck source=tests/lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=tests/helpers/observe_lib.sh
source "$(dirname "$0")/../helpers/observe_lib.sh"

topology_up
pod f-1 198.18.90.1 "" --tcp 8080 --udp 8080
pod f-2 198.18.90.2 "" --tcp 8080 --udp 8080

SRC=$WORK/services.yaml
# svc POD: Service "fl" (TCP 80, UDP 53) with this one pod.
svc() {
	write_source "$SRC" <<EOF
apiVersion: v1
kind: Service
metadata: {name: fl, namespace: features}
spec:
  clusterIP: 10.96.90.10
  ports:
  - {name: tcp, port: 80, protocol: TCP, targetPort: 8080}
  - {name: udp, port: 53, protocol: UDP, targetPort: 8080}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: fl-1, namespace: features, labels: {kubernetes.io/service-name: fl}}
addressType: IPv4
ports: [{name: tcp, port: 8080, protocol: TCP}, {name: udp, port: 8080, protocol: UDP}]
endpoints: [{addresses: [198.18.90.${1#f-}]}]
EOF
}

MISSING='connected UDP sockets to a removed backend are not failed'
# Why ferryd gives for the reaper off: the kernel's lack of it comes first.
OFF_WHY="turned off (ferryd --udp-reaper off)"
kernel_btf_has udp_reaper || OFF_WHY="the kernel lacks the bpf_sock_destroy kfunc (Linux 6.5)"
reaper_status() { status_get '"%s %s" % (j["features"]["udp_reaper"]["available"], j["features"]["udp_reaper"].get("why", "-"))'; }
# shellcheck disable=SC2317 # run through wait_until
reaper_pinned() { test -e "$BPFFS/links/udp-reap"; }
reaped() { status_get 'j["counters"]["udp_sockets_reaped"]'; }
# log_count TEXT: lines with TEXT in the log of the last ferryd started.
log_count() {
	awk '/^=== ferryd/ {n = 0} {line[n++] = $0} END {for (i = 0; i < n; i++) print line[i]}' \
		"$FERRYD_LOG" | grep -c -F -- "$1"
}
# change_to POD: svc POD, and wait for its generation.
change_to() {
	local g
	g=$(generation)
	svc "$1"
	wait_generation $((g + 1)) 10 || not_ok "$1 in place of the pod before: a new generation" "still $(generation)"
}
# holds_reaper: "yes" when the running ferryd holds a loaded ferry_udp_reap
# program (its descriptors, read from /proc), else "no".
holds_reaper() {
	local fd id
	for fd in /proc/"$FERRYD_PID"/fd/*; do
		[ "$(readlink "$fd")" = anon_inode:bpf-prog ] || continue
		id=$(awk '$1 == "prog_id:" {print $2}' "/proc/$FERRYD_PID/fdinfo/${fd##*/}")
		if bpftool prog show id "$id" 2>/dev/null | grep -q ' name ferry_udp_reap '; then
			echo yes
			return
		fi
	done
	echo no
}
# foreign_maps: the maps the running ferryd holds (its descriptors) that
# bear the name of a map pinned under $BPFFS but are not that map, as
# "name:id ...", or "none": the reaper's object loads on the socket LB's
# maps and makes none of its own.
foreign_maps() {
	bpftool -j -f map show | "$PYTHON" -c '
import json, os, sys
pid, bpffs = sys.argv[1], os.path.normpath(sys.argv[2])
maps = json.load(sys.stdin)
names = {m["id"]: m["name"] for m in maps}
pinned = {m["name"]: m["id"] for m in maps
          if any(os.path.dirname(p) == bpffs for p in m.get("pinned", []))}
held = set()
for fd in os.listdir(f"/proc/{pid}/fd"):
    try:
        if os.readlink(f"/proc/{pid}/fd/{fd}") != "anon_inode:bpf-map":
            continue
        with open(f"/proc/{pid}/fdinfo/{fd}") as f:
            held |= {int(l.split()[1]) for l in f if l.startswith("map_id:")}
    except OSError:
        continue
print(" ".join(sorted(f"{names[i]}:{i}" for i in held
                      if names.get(i) in pinned and pinned[names[i]] != i)) or "none")
' "$FERRYD_PID" "$BPFFS"
}
# own_generation: the ferryd just started has published (a restart on a
# pinned datapath finds a generation already there). Up to 120 s: under
# TCG on a loaded machine a restart took 25 s.
own_generation() { wait_status 120 "j['agent']['ferryd_pid'] == $FERRYD_PID"; }
# udp_hold NAME: a connected UDP socket through the ClusterIP, held in
# $WORK/NAME; its first exchange in $WORK/NAME/first, within the 60 s the
# client waits (under TCG on a loaded machine it took over 10 s).
udp_hold() {
	mkdir "$WORK/$1"
	bg_client "$PYTHON" "$PROBE" hold --udp --connect 10.96.90.10 53 --dir "$WORK/$1" --wait 60
	wait_file "$WORK/$1/first" 60
}
# udp_hold_again NAME: its second exchange, after the change.
udp_hold_again() {
	touch "$WORK/$1/go"
	wait_file "$WORK/$1/second" 10
	cat "$WORK/$1/second" 2>/dev/null
}

# --- the reaper off: what a kernel before 6.5 gets --------------------------------
svc f-1
obs_ports
ferryd_start "$SRC" --udp-reaper off --metrics-addr "127.0.0.1:$MPORT" || finish
expect "reaper off: ClusterIP TCP served" "$(field reply "$(probe tcp 10.96.90.10 80)")" f-1
expect "reaper off: ClusterIP UDP served" "$(field reply "$(probe udp 10.96.90.10 53)")" f-1
expect "reaper off: ClusterIP UDP on a connected socket served" \
	"$(field reply "$(probe udp --connect 10.96.90.10 53)")" f-1
expect "reaper off: ferryctl status says udp_reaper is off, and why" "$(reaper_status)" \
	"False $OFF_WHY"
expect_match "reaper off: ferryctl status (text) says what is missing" \
	"$("$FERRYCTL" --bpffs "$BPFFS" status)" "udp_reaper +OFF: ${OFF_WHY%% (*}.*$MISSING"
expect "reaper off: ferry_feature_available{feature=\"udp_reaper\"} 0" \
	"$(metric 'ferry_feature_available{feature="udp_reaper"}')" 0
expect "reaper off: no reaper program loaded, no reaper link pinned" \
	"$(holds_reaper) $(test -e "$BPFFS/links/udp-reap" && echo pinned || echo none)" "no none"
udp_hold off-held
expect "reaper off: a connected UDP socket answered by f-1" "$(cat "$WORK/off-held/first")" \
	"f-1 peer=10.96.90.10:53"
r0=$(reaped)
change_to f-2
expect "B21 reaper off: the connected socket on the removed f-1 is not failed (it still reaches f-1)" \
	"$(udp_hold_again off-held)" "f-1 peer=10.96.90.10:53"
expect "reaper off: nothing reaped" "$(($(reaped) - r0))" 0
expect "reaper off: a new socket reaches f-2" "$(field reply "$(probe udp --connect 10.96.90.10 53)")" f-2
expect "reaper off: the log says once which behaviour is missing and why, after a removal too" \
	"$(log_count "udp_reaper not used (--udp-reaper off): $MISSING")" 1

# --- the default: used where the kernel has it --------------------------------------
ferryd_reset
svc f-1
obs_ports
ferryd_start "$SRC" --metrics-addr "127.0.0.1:$MPORT" || finish
# The one case that reads the kernel: ferryd's word, which the rest follow.
if kernel_btf_has udp_reaper; then
	# Its link is pinned a moment after the first generation.
	wait_until 30 reaper_pinned
	expect "reaper auto: ferryctl status says udp_reaper is on (the kernel's BTF has bpf_sock_destroy)" \
		"$(reaper_status)" "True -"
else
	expect "reaper auto: ferryctl status says udp_reaper is off, and why (the kernel's BTF lacks bpf_sock_destroy)" \
		"$(reaper_status)" "False the kernel lacks the bpf_sock_destroy kfunc (Linux 6.5)"
fi
expect "reaper auto: ferry_feature_available says what ferryctl status says, for udp_reaper, tcx and xdp_meta" \
	"$(metric 'ferry_feature_available{feature="udp_reaper"}') $(metric 'ferry_feature_available{feature="tcx"}') $(metric 'ferry_feature_available{feature="xdp_meta"}')" \
	"$(status_get '" ".join(str(int(j["features"][f]["available"])) for f in ("udp_reaper", "tcx", "xdp_meta"))')"
# xdp_meta, against the kernel itself: the XDP object as built (xdp_meta
# true, so the call is live) loads exactly where the kernel lets XDP call
# bpf_xdp_adjust_meta.
XDP_PIN="$BPFFS-xdpprobe"
if bpftool prog loadall "$BUILD/bpf/nodeport_xdp.bpf.o" "$XDP_PIN" type xdp >/dev/null 2>&1; then
	xdp_loads=True
else
	xdp_loads=False
fi
rm -rf "$XDP_PIN"
expect "xdp_meta: ferryctl status says available exactly when the XDP object, call live, loads ($xdp_loads)" \
	"$(status_get 'j["features"]["xdp_meta"]["available"]')" "$xdp_loads"
if [ "$xdp_loads" = False ]; then
	expect "xdp_meta: the log says once what is lost without it" \
		"$(log_count "xdp_meta not used (the kernel lacks bpf_xdp_adjust_meta for XDP programs")" 1
fi
udp_hold auto-held
expect "reaper auto: a connected UDP socket answered by f-1" "$(cat "$WORK/auto-held/first")" \
	"f-1 peer=10.96.90.10:53"
USED="reaper auto: the reaper program loaded, its link pinned"
LOGGED="reaper auto: the log says it is used, nothing about it missing"
AUTO_B21="B21 reaper auto: the connected socket on the removed f-1 fails (EDESTADDRREQ: aborted)"
SHARED="reaper auto: the reaper's object is on the socket LB's maps (ferryd holds no other map of their names)"
if needs_feature udp_reaper "$AUTO_B21" "$USED" "$SHARED" "$LOGGED"; then
	# The change first: the held socket waits 60 s for it (bpftool under
	# TCG takes seconds a call).
	change_to f-2
	expect "$AUTO_B21" "$(udp_hold_again auto-held)" "error=EDESTADDRREQ"
	expect "$USED" "$(holds_reaper) $(test -e "$BPFFS/links/udp-reap" && echo pinned || echo none)" "yes pinned"
	expect "$SHARED" "$(foreign_maps)" none
	expect "$LOGGED" "$(log_count "udp_reaper used") $(log_count "$MISSING")" "1 0"
	# A restart whose first apply removes the backend of a connected UDP
	# socket: the search before the first publish waits for the reaper's
	# object, which starts loading once the programs serve. A client that
	# waits for the generation finds its socket failed: the search a
	# second later (AGENT_REAP_AGAIN_S) would be too late.
	udp_hold restart-held
	expect "reaper restart: a connected UDP socket answered by f-2" \
		"$(cat "$WORK/restart-held/first")" "f-2 peer=10.96.90.10:53"
	r0=$(reaped)
	ferryd_stop
	svc f-1
	ferryd_start "$SRC" || finish
	own_generation || not_ok "reaper restart: the new ferryd publishes" "pid $(status_get 'j["agent"]["ferryd_pid"]')"
	expect "B21 reaper restart: the connected socket on f-2, removed while ferryd was down, has failed once the new ferryd publishes (EDESTADDRREQ)" \
		"$(udp_hold_again restart-held)" "error=EDESTADDRREQ"
	expect "reaper restart: ferryctl status counts it reaped, the reaper's link is pinned" \
		"$(($(reaped) - r0)) $(reaper_pinned && echo pinned || echo none)" "1 pinned"
	change_to f-2
else
	expect "reaper auto, the kernel lacks it: no reaper program, no link; the log says once what is missing" \
		"$(holds_reaper) $(test -e "$BPFFS/links/udp-reap" && echo pinned || echo none) $(log_count "udp_reaper not used (the kernel lacks") $(log_count "$MISSING")" \
		"no none 1 1"
	change_to f-2
fi

# --- a restart with it off: the link of the ferryd before goes ---------------------
ferryd_stop
ferryd_start "$SRC" --udp-reaper off || finish
own_generation || not_ok "restart: the new ferryd publishes" "pid $(status_get 'j["agent"]["ferryd_pid"]')"
expect "restart with --udp-reaper off: status says off, the pinned reaper link is gone" \
	"$(reaper_status) $(test -e "$BPFFS/links/udp-reap" && echo pinned || echo none)" \
	"False $OFF_WHY none"
expect "restart with --udp-reaper off: ClusterIP UDP served" \
	"$(field reply "$(probe udp 10.96.90.10 53)")" f-2
ferryd_reset

# --- refusals that name their cause --------------------------------------------------
# without_caps CAPS: ferryd spawned with these capabilities out of its
# bounding set (root keeps the others).
without_caps() {
	local caps=$1
	shift
	FERRYD_USED=1
	echo "=== ferryd (without $caps) --source file:$SRC" >>"$FERRYD_LOG"
	setpriv --bounding-set "$caps" "$FERRYD" --source "file:$SRC" --cgroup "$CG" \
		--bpffs "$BPFFS" --node-name node-a --metrics-addr "" --health-addr "" \
		2>>"$FERRYD_LOG" &
	FERRYD_PID=$!
}
without_caps -bpf,-sys_admin
if expect_refused "no CAP_BPF: ferryd refuses to start" 15; then
	expect "no CAP_BPF: the log says BPF is not permitted, and blames no kernel feature" \
		"$(log_count "not permitted to use BPF") $(log_count "missing kernel feature")" "1 0"
fi
without_caps -perfmon,-sys_admin
if expect_refused "no CAP_PERFMON: ferryd refuses to start" 30; then
	expect_match "no CAP_PERFMON: the log names the program the verifier refused" \
		"$(sed -n '/^=== ferryd (without -perfmon/,$p' "$FERRYD_LOG" | grep -o "the kernel's verifier refused BPF program [a-z0-9_]*" | head -n 1)" \
		"refused BPF program ferry_[a-z0-9_]+$"
	expect "no CAP_PERFMON: no map is blamed" "$(log_count "cannot create BPF map")" 0
fi
ferryd_reset

# --- a pinned map that differs in its flags only -----------------------------------
ferryd_start "$SRC" --max-services 16 || finish
read -r key value entries flags < <(bpftool -j map show pinned "$BPFFS/ferry_services4" |
	"$PYTHON" -c 'import json, sys; m = json.load(sys.stdin); print(m["bytes_key"], m["bytes_value"], m["max_entries"], m["flags"])')
ferryd_reset
mkdir -p "$BPFFS"
bpftool map create "$BPFFS/ferry_services4" type hash key "$key" value "$value" \
	entries "$entries" name ferry_services4 flags 0 ||
	not_ok "flags: a ferry_services4 without BPF_F_NO_PREALLOC pinned" "bpftool map create"
# And layout 8's one frontend map (20-byte keys), which layout 9 split.
bpftool map create "$BPFFS/ferry_services" type hash key 20 value "$value" \
	entries "$entries" name ferry_services flags 1 ||
	not_ok "retired: layout 8's ferry_services pinned" "bpftool map create"
ferryd_start "$SRC" --max-services 16 || finish
expect "flags: ferry_services4 of another flag value (0, this ferryd's $flags) is migrated, and the log names the flags" \
	"$(log_count "ferry_services4: flags 0x0, this ferryd's 0x$(printf '%x' "$flags")")" 1
expect "flags: the migrated datapath serves" "$(field reply "$(probe tcp 10.96.90.10 80)")" f-2
expect "retired: the migration unpins layout 8's ferry_services" \
	"$(test -e "$BPFFS/ferry_services" && echo pinned || echo gone)" gone
pinned=none
CLEANED="--cleanup removes the reaper link with the rest"
if kernel_btf_has udp_reaper && wait_until 30 reaper_pinned; then pinned=pinned; fi
needs_feature udp_reaper "$CLEANED" && REAPER=1
ferryd_reset
if [ -n "${REAPER:-}" ]; then
	expect "$CLEANED" "$pinned $(test -e "$BPFFS" && echo left || echo gone)" "pinned gone"
else
	expect "--cleanup removes everything" "$(test -e "$BPFFS" && echo left || echo gone)" gone
fi

finish
