#!/usr/bin/env bash
# The per-packet path without tcx (what a kernel before 6.6 gets; --tcx off
# here, on a kernel that has it): the tc programs are clsact filters
# (handle 0xf377, priority 1, direct-action) instead of pinned tcx links.
# ferryd runs inside the node namespace, whose veths np1 and np2 carry the
# node's addresses (as in attach.sh):
#  - tc egress filters on both veths, XDP links as with tcx, no tc link
#    pinned; ferryctl status lists the filters; the log says once that tcx
#    is not used and what that costs; ferry_feature_available{tcx} 0;
#  - a restart replaces each filter in place (a new program in the same
#    filter, never two), --xdp off adds the ingress filters and drops XDP;
#  - a device no longer in --devices loses its filters;
#  - back to --tcx auto: tcx links pinned, ferry's filters gone (where
#    ferryctl status says the kernel has tcx: tests/lib.sh needs_feature);
#  - ferryd --cleanup (in the namespace) removes the filters.
# NodePort traffic through the filters: tests/kernel/nodeport_tc_filters.sh.
# shellcheck disable=SC2317 # functions run through wait_until
# shellcheck source=tests/lib.sh
source "$(dirname "$0")/../lib.sh"

topology_up
FERRYD_NETNS=$NODE
for i in 1 2; do
	if ! { ip -n "$NODE" link add "np$i" type veth peer name "np${i}peer" &&
		ip -n "$NODE" link set "np$i" up && ip -n "$NODE" link set "np${i}peer" up; }; then
		not_ok "tc_filters setup" "veth np$i"
		finish
	fi
done
ip -n "$NODE" addr add 192.0.2.1/24 dev np1
ip -n "$NODE" addr add 2001:db8::1/64 dev np2 nodad
NODE_IPS=192.0.2.1,2001:db8::1

SRC=$WORK/tc.yaml
write_source "$SRC" <<'EOF'
apiVersion: v1
kind: Service
metadata: {name: web, namespace: tc}
spec:
  clusterIP: 10.96.61.10
  ports: [{name: http, port: 80}]
EOF

# filters DEV DIR: ferry's filter on DEV's clsact DIR (ingress, egress) as
# "PROGRAM:PROG-ID" (several: space separated), or none. Program names are
# cut to 15 characters (ferry_tc_ingres).
filters() {
	in_node tc filter show dev "$1" "$2" 2>/dev/null |
		awk '/pref 1 bpf/ && /handle 0xf377/ && / direct-action/ {
			for (i = 1; i <= NF; i++) { if ($i ~ /^ferry_/) n = $i; if ($i == "id") id = $(i + 1) }
			out = out (out ? " " : "") n ":" id } END {print out ? out : "none"}'
}
all_filters() { echo "$(filters np1 ingress) $(filters np1 egress) $(filters np2 ingress) $(filters np2 egress)"; }
pins() { (cd "$BPFFS/links" 2>/dev/null && ls -d xdp-* tc-* 2>/dev/null) | sort | tr '\n' ' ' | sed 's/ $//'; }
status_packet() {
	in_node "$FERRYCTL" --bpffs "$BPFFS" status -o json | "$PYTHON" -c '
import json, sys
print(" ".join(sorted("%s:%s:%s" % (l["device"], l["hook"], l["attach"])
                      for l in json.load(sys.stdin)["packet_path"] if l["attached"])))'
}
MPORT=10249
metric() {
	in_node curl -sS --max-time 3 -o "$WORK/metrics.txt" "http://127.0.0.1:$MPORT/metrics" &&
		"$PYTHON" "$REPO/tests/helpers/prom.py" value "$WORK/metrics.txt" "$1"
}
said() { grep -c 'north-south traffic' "$FERRYD_LOG"; }
said_more() { [ "$(said)" -gt "$1" ]; }
# start_attached ARGS...: ferryd on SRC (after stopping the one running),
# waiting until it says where it serves north-south traffic.
start_attached() {
	local n
	ferryd_stop
	n=$(said)
	ferryd_spawn "$SRC" "$@"
	wait_until 60 said_more "$n" ||
		{ not_ok "ferryd $* attaches within 60 s" "$(tail -n 3 "$FERRYD_LOG")"; finish; }
}
LOSS="tcx not used (--tcx off): the per-packet path's tc programs are clsact filters"

# --- XDP native, tc egress filters -----------------------------------------------
start_attached --node-ips "$NODE_IPS" --tcx off --metrics-addr "127.0.0.1:$MPORT"
read -r -a f <<<"$(all_filters)"
expect_match "tcx off: tc ingress and egress filters on each veth (ingress takes what XDP hands over)" \
	"${f[*]}" '^ferry_tc_ingres:[0-9]+ ferry_tc_egress:[0-9]+ ferry_tc_ingres:[0-9]+ ferry_tc_egress:[0-9]+$'
expect "tcx off: XDP links pinned, no tc link" "$(pins)" "xdp-np1 xdp-np2"
expect "tcx off: ferryctl status lists the filters beside the XDP links" "$(status_packet)" \
	"np1:tc-egress:clsact filter np1:tc-ingress:clsact filter np1:xdp:link np2:tc-egress:clsact filter np2:tc-ingress:clsact filter np2:xdp:link"
expect "tcx off: ferry_feature_available{feature=\"tcx\"} 0, the path is up" \
	"$(metric 'ferry_feature_available{feature="tcx"}') $(metric ferry_packet_path_up)" "0 1"
expect "tcx off: the log says once that tcx is not used and what that costs" \
	"$(grep -c -F "$LOSS" "$FERRYD_LOG")" 1
expect "tcx off: the log says the devices' replies go through clsact filters" \
	"$(grep -c 'np[12]: new flows at XDP (native; tc ingress resolves neighbours), replies at tc egress (clsact filters)' "$FERRYD_LOG")" 2

# --- a restart replaces the filters in place ---------------------------------------
before=${f[1]}
start_attached --node-ips "$NODE_IPS" --tcx off
read -r -a f <<<"$(all_filters)"
if [[ ${f[1]} =~ ^ferry_tc_egress:[0-9]+$ ]] && [ "${f[1]}" != "$before" ]; then
	ok "restart: np1's egress filter runs the new ferryd's program, one filter (${before#*:} -> ${f[1]#*:})"
else
	not_ok "restart: np1's egress filter runs the new program, one filter" "before $before, now ${f[*]}"
fi

# --- --xdp off: tc ingress filters in XDP's place -----------------------------------
start_attached --node-ips "$NODE_IPS" --tcx off --xdp off
expect_match "xdp off: ingress and egress filters on both veths" "$(all_filters)" \
	'^ferry_tc_ingres:[0-9]+ ferry_tc_egress:[0-9]+ ferry_tc_ingres:[0-9]+ ferry_tc_egress:[0-9]+$'
expect "xdp off: no link pinned at all" "$(pins)" ""

# --- a device no longer served loses its filters ---------------------------------------
start_attached --node-ips "$NODE_IPS" --tcx off --xdp off --devices np1
expect_match "--devices np1: np1 keeps its filters, np2 has none" "$(all_filters)" \
	'^ferry_tc_ingres:[0-9]+ ferry_tc_egress:[0-9]+ none none$'

# --- back to tcx -------------------------------------------------------------------------
start_attached --node-ips "$NODE_IPS" --devices np1
TCX_AUTO="tcx auto: np1's filters go once its tcx and XDP links are pinned"
if needs_feature tcx "$TCX_AUTO"; then
	expect "$TCX_AUTO" "$(all_filters) | $(pins)" "none none none none | tc-egress-np1 tc-ingress-np1 xdp-np1"
else
	expect_match "tcx auto, the kernel lacks tcx: np1 keeps its filters of the new ferryd, np2 none, the XDP link pinned" \
		"$(all_filters) | $(pins)" '^ferry_tc_ingres:[0-9]+ ferry_tc_egress:[0-9]+ none none \| xdp-np1$'
fi

# --- cleanup ---------------------------------------------------------------------------------
start_attached --node-ips "$NODE_IPS" --tcx off
expect_match "tcx off again: filters on both veths" "$(all_filters)" \
	'^ferry_tc_ingres:[0-9]+ ferry_tc_egress:[0-9]+ ferry_tc_ingres:[0-9]+ ferry_tc_egress:[0-9]+$'
expect "tcx off again: np1's tcx link unpinned (detached), the XDP links stay" "$(pins)" \
	"xdp-np1 xdp-np2"
ferryd_stop
in_node "$FERRYD" --cleanup --bpffs "$BPFFS" >>"$FERRYD_LOG" 2>&1
expect "ferryd --cleanup in the node namespace removes ferry's filters" "$(all_filters)" \
	"none none none none"

finish
