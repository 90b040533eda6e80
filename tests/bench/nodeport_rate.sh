#!/usr/bin/env bash
# NodePort short-connection rate: a new TCP connection per request
# (build/bench/loadgen) from an external client through node 1 to the same
# pods, four ways, interleaved in each round:
#   np-direct    the pods' own addresses (node 1 only routes), in a fixed
#                random order: the floor, with a load balancer's random pick
#   np-xdp       ferry, --xdp=native on node 1's lan0
#   np-tc        ferry, --xdp=off (everything in tc)
#   np-iptables  kube-proxy's iptables NodePort layout (KUBE-SERVICES,
#                KUBE-NODEPORTS, KUBE-EXT-* marking for MASQUERADE, DNAT in
#                KUBE-SEP-*), through iptables-nft-restore in node 1's
#                namespace; loaded before its run and its table deleted
#                after, so that no other method runs with netfilter's NAT
#                and conntrack hooks in node 1
# at N NodePort Services (default 100, 1,000 and 10,000), each with all 10
# pods as endpoints (10 pods behind node 1 running build/bench/httpd), 32
# of them targeted, spread over the list.
#
#   tests/bench/nodeport_rate.sh [--out DIR] [--sizes "N..."] [--rounds R]
#                                [--seconds S] [--conc C] [--quick]
#
# Writes to DIR (default results/<UTC stamp>-nodeport): nodeport.csv (in
# traffic.csv's columns: n,round,method,conns,errors,seconds,rate,p50_us,
# p99_us,busy_ticks,all_ticks), nodeport-checks.csv, summary-nodeport.csv
# (per N and method: median rate, min, max, median ratio to np-direct and
# to np-iptables within a round) and nodeport.md (the table for
# docs/benchmarks.md); logs in DIR/logs/nodeport_rate. Goals, reported and
# not asserted: ahead of iptables with a gap that grows with N, within 5%
# of direct.
#
# The topology is tests/helpers/topology.sh's (namespaces, cgroup, pins of
# this run only, removed on exit or signal through tests/lib.sh's cleanup).
set -u
export LC_ALL=C

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SIZES="100 1000 10000"
ROUNDS=3
SECS=3
CONC=100
OUT=
while [ $# -gt 0 ]; do
	case $1 in
	--out) OUT=$2; shift ;;
	--sizes) SIZES=$2; shift ;;
	--rounds) ROUNDS=$2; shift ;;
	--seconds) SECS=$2; shift ;;
	--conc) CONC=$2; shift ;;
	--quick) SIZES="100 1000" ROUNDS=2 SECS=1 ;;
	-h | --help) sed -n '2,/^$/s/^# \{0,1\}//p' "$0"; exit 0 ;;
	*) echo "nodeport_rate.sh: unknown option $1 (--help)" >&2; exit 2 ;;
	esac
	shift
done
[ -n "$OUT" ] || OUT=$REPO/results/$(date -u +%Y%m%dT%H%M%SZ)-nodeport
mkdir -p "$OUT" || exit 1
export LOGDIR=$OUT/logs/nodeport_rate
# shellcheck source=tests/lib.sh
source "$REPO/tests/lib.sh"
# shellcheck source=tests/helpers/topology.sh
source "$REPO/tests/helpers/topology.sh"
BENCH=$BUILD/bench
NPODS=10
NTARGETS=32
NP_BASE=20000
METHODS=(np-direct np-iptables np-xdp np-tc)
T0=$SECONDS

say() { printf '[nodeport %4d s] %s\n' $((SECONDS - T0)) "$*" | tee -a "$LOGDIR/run.log"; }
die() {
	say "FATAL: $*"
	exit 1
}

for f in "$BENCH/loadgen" "$BENCH/httpd" "$FERRYD" "$FERRYCTL"; do
	[ -x "$f" ] || die "$f missing: make bench-tools"
done
for c in iptables-nft-restore nft ethtool clang; do
	command -v "$c" >/dev/null || die "$c not found (scripts/install-deps.sh)"
done
[ "$(id -u)" = 0 ] || die "needs root"

# --- topology: 10 pods behind node 1 -----------------------------------------

topo_up
for ((i = 1; i <= NPODS; i++)); do
	topo_pod "b-$i" 1 $((i + 1))
	ns=${POD_NS[b-$i]}
	in_ns "$ns" sysctl -q -w net.core.somaxconn=4096 net.ipv4.tcp_max_syn_backlog=4096 >/dev/null
	nsenter --net="/run/netns/$ns" "$BENCH/httpd" -p 8080 -n "b-$i" >>"$LOGDIR/httpd.log" 2>&1 &
	PIDS+=($!)
done
in_ext a sysctl -q -w net.ipv4.ip_local_port_range="1024 65535" >/dev/null
for ((i = 1; i <= NPODS; i++)); do
	wait_until 5 test -n "$(in_ns "${POD_NS[b-$i]}" ss -Htln 'sport = :8080')" ||
		die "httpd in pod b-$i does not listen"
done

# --- states and rules ----------------------------------------------------------

# gen N: a v1 List (JSON): node 1's Node and N NodePort Services svc-I
# (ClusterIP 10.96.0.0/12 + I + 1, port 80 -> 8080, nodePort NP_BASE + I),
# each with the 10 pods as endpoints on node-1, in a rotated order.
gen() {
	"$PYTHON" - "$1" "$NPODS" "$NP_BASE" <<'PY'
import ipaddress, json, sys
n, pods, base = map(int, sys.argv[1:4])
svc_net = ipaddress.ip_network("10.96.0.0/12")
items = [{"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-1"},
          "status": {"addresses": [{"type": "InternalIP", "address": "192.0.2.1"},
                                   {"type": "InternalIP", "address": "2001:db8::1"}]}}]
for i in range(n):
    ip = str(svc_net[i + 1])
    items.append({"apiVersion": "v1", "kind": "Service",
                  "metadata": {"name": f"svc-{i}", "namespace": "bench"},
                  "spec": {"type": "NodePort", "clusterIP": ip, "clusterIPs": [ip],
                           "ports": [{"name": "http", "port": 80, "protocol": "TCP",
                                      "targetPort": 8080, "nodePort": base + i}]}})
for i in range(n):
    eps = [{"addresses": [f"198.18.1.{2 + (i + j) % pods}"], "conditions": {"ready": True},
            "nodeName": "node-1"} for j in range(pods)]
    items.append({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                  "metadata": {"name": f"svc-{i}-1", "namespace": "bench",
                               "labels": {"kubernetes.io/service-name": f"svc-{i}"}},
                  "addressType": "IPv4",
                  "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
                  "endpoints": eps})
json.dump({"apiVersion": "v1", "kind": "List", "items": items}, sys.stdout)
PY
}

# iptables_rules STATE: kube-proxy's iptables layout for STATE
# (tests/bench/rules.py: KUBE-SERVICES, KUBE-SVC-*, KUBE-SEP-*, the
# KUBE-NODEPORTS jump for local destinations, MASQUERADE by mark) plus what
# kube-proxy writes for each NodePort with externalTrafficPolicy Cluster:
# KUBE-NODEPORTS -> KUBE-EXT-* (mark for masquerade) -> KUBE-SVC-*.
iptables_rules() {
	"$PYTHON" - "$REPO/tests/bench" "$1" "$NP_BASE" <<'PY'
import json, sys
sys.path.insert(0, sys.argv[1])
import rules
state, base = sys.argv[2], int(sys.argv[3])
ports = rules.load_state(state)
text = rules.iptables(ports, None)
nodeport = {}
for it in json.load(open(state))["items"]:
    if it["kind"] == "Service":
        for p in it["spec"]["ports"]:
            nodeport[(it["metadata"]["namespace"], it["metadata"]["name"], p["name"])] = p["nodePort"]
chains, lines = [], []
for sp in ports:
    spn = sp.spn()
    svc = "KUBE-SVC-" + rules.b32sha(spn + sp.proto)[:16]
    ext = "KUBE-EXT-" + rules.b32sha(spn + sp.proto)[:16]
    chains.append(f":{ext} - [0:0]")
    lines.append(f'-A KUBE-NODEPORTS -p {sp.proto} -m comment --comment "{spn}" -m {sp.proto} '
                 f'--dport {nodeport[(sp.ns, sp.name, sp.port_name)]} -j {ext}')
    lines.append(f'-A {ext} -m comment --comment "masquerade traffic for {spn} external destinations" '
                 f'-j KUBE-MARK-MASQ')
    lines.append(f"-A {ext} -j {svc}")
out = text.split("\n")
at = out.index(":KUBE-MARK-MASQ - [0:0]") + 1
out[at:at] = chains
at = out.index("COMMIT")
out[at:at] = lines
sys.stdout.write("\n".join(out))
PY
}

# targets N: NTARGETS NodePorts spread evenly over the N services.
targets() {
	"$PYTHON" -c 'import sys
n, k, base = map(int, sys.argv[1:4])
k = min(k, n)
idx = sorted({round(j * (n - 1) / max(k - 1, 1)) for j in range(k)})
print(" ".join("192.0.2.1:%d" % (base + i) for i in idx))' "$1" "$NTARGETS" "$NP_BASE"
}

# The pods in a fixed random order, 4096 picks: loadgen's round-robin over
# them is a random choice per connection, as a load balancer makes it.
DIRECT_TARGETS=$("$PYTHON" -c 'import random, sys
r = random.Random(7)
print(" ".join("198.18.1.%d:8080" % (2 + r.randrange(int(sys.argv[1]))) for _ in range(4096)))' "$NPODS")

# --- methods -------------------------------------------------------------------

STATE=
RULES_FILE=

ferry_up() {
	FERRYD_NETNS=$NODE ferryd_start "$STATE" --node-name "$TOPO_NODE_NAME" --devices lan0 --xdp "$1" \
		--node-ips "$N1_V4,$N1_V6" \
		--node-port-range "$NP_BASE-$((NP_BASE + 9999))" --log-level info
}

ferry_down() { topo_ferryd_reset; }

ipt_up() { in_node iptables-nft-restore <"$RULES_FILE"; }

# ipt_down: the nat table deleted, which unregisters its hooks and with
# them conntrack's in node 1 (iptables-legacy's would stay for the
# namespace's life).
ipt_down() { in_node nft delete table ip nat 2>/dev/null; }

# method_up METHOD / method_down METHOD: what the method needs on node 1.
method_up() {
	case $1 in
	np-xdp) ferry_up native ;;
	np-tc) ferry_up off ;;
	np-iptables) ipt_up ;;
	esac
}

method_down() {
	case $1 in
	np-xdp | np-tc) ferry_down ;;
	np-iptables) ipt_down ;;
	esac
}

cpu_ticks() { awk '$1 == "cpu" {print $2 + $3 + $4 + $7 + $8, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9; exit}' /proc/stat; }

kv() { sed -n "s/.*\\b$1=\\([^ ]*\\).*/\\1/p" <<<"$2" | head -n 1; }

# loadgen_run METHOD CONC TOTAL SECONDS: one loadgen line from client a.
loadgen_run() {
	local tg=$TARGETS
	[ "$1" = np-direct ] && tg=$DIRECT_TARGETS
	# shellcheck disable=SC2086 # one target a word
	timeout -k 5 $(($4 + 60)) nsenter --net="/run/netns/$TOPO_CA" \
		"$BENCH/loadgen" -c "$2" -n "$3" -t "$4" $tg 2>>"$LOGDIR/loadgen.log" | tail -n 1
}

conntrack_count() { in_node cat /proc/sys/net/netfilter/nf_conntrack_count 2>/dev/null || echo 0; }

# --- main ----------------------------------------------------------------------

{
	echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo "kernel: $(uname -r); cores: $(nproc); cpu: $(awk -F': *' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
	echo "sizes: $SIZES; rounds: $ROUNDS; loadgen -c $CONC -t $SECS; $NTARGETS NodePorts targeted; $NPODS pods behind node 1"
	echo "iptables: $(iptables-nft --version 2>/dev/null)"
} >"$OUT/nodeport-config.txt"
echo "n,round,method,conns,errors,seconds,rate,p50_us,p99_us,busy_ticks,all_ticks" >"$OUT/nodeport.csv"
echo "n,method,check" >"$OUT/nodeport-checks.csv"
say "N = $SIZES; $ROUNDS rounds of $SECS s, -c $CONC; methods ${METHODS[*]}; results in $OUT"

for n in $SIZES; do
	STATE=$WORK/state-$n.json
	RULES_FILE=$WORK/rules-$n.txt
	gen "$n" >"$STATE" || die "generating $n services"
	iptables_rules "$STATE" >"$RULES_FILE" || die "iptables rules for $n services"
	TARGETS=$(targets "$n")
	say "N = $n: $(wc -l <"$RULES_FILE") iptables lines"
	# A short run through each: every connection must succeed.
	for m in "${METHODS[@]}"; do
		if ! method_up "$m"; then
			say "N=$n: $m does not start (see $LOGDIR)"
			echo "$n,$m,no-start" >>"$OUT/nodeport-checks.csv"
			method_down "$m"
			continue
		fi
		out=$(loadgen_run "$m" 8 400 10)
		method_down "$m"
		if [ "$(kv conns "$out")" = 400 ] && [ "$(kv errors "$out")" = 0 ]; then
			echo "$n,$m,ok" >>"$OUT/nodeport-checks.csv"
		else
			say "N=$n: $m check failed: '${out:-no output}'"
			echo "$n,$m,fail" >>"$OUT/nodeport-checks.csv"
		fi
	done
	for ((r = 1; r <= ROUNDS; r++)); do
		line=
		for m in "${METHODS[@]}"; do
			grep -q "^$n,$m,ok$" "$OUT/nodeport-checks.csv" || continue
			method_up "$m" || { say "N=$n round $r: $m does not start"; method_down "$m"; continue; }
			c0=$(conntrack_count)
			read -r b0 a0 <<<"$(cpu_ticks)"
			out=$(loadgen_run "$m" "$CONC" 100000000 "$SECS")
			read -r b1 a1 <<<"$(cpu_ticks)"
			c1=$(conntrack_count)
			method_down "$m"
			[ -n "$out" ] || { say "N=$n round $r $m: loadgen printed nothing"; continue; }
			echo "$n,$r,$m,$(kv conns "$out"),$(kv errors "$out"),$(kv seconds "$out"),$(kv rate "$out"),$(kv p50_us "$out"),$(kv p99_us "$out"),$((b1 - b0)),$((a1 - a0))" >>"$OUT/nodeport.csv"
			echo "N=$n round $r $m: node 1 conntrack entries $c0 -> $c1" >>"$LOGDIR/conntrack.log"
			line+=" $m=$(printf '%.0f' "$(kv rate "$out")")"
			[ "$(kv errors "$out")" = 0 ] || line+="(err $(kv errors "$out"))"
		done
		say "  round $r conn/s:$line"
	done
	rm -f "$STATE" "$RULES_FILE"
done

# --- summary -------------------------------------------------------------------

"$PYTHON" - "$OUT" <<'PY'
import csv, os, statistics, sys
from collections import defaultdict
d = sys.argv[1]
rows = list(csv.DictReader(open(os.path.join(d, "nodeport.csv"))))
methods = ["np-direct", "np-xdp", "np-tc", "np-iptables"]
label = {"np-direct": "direct to the pods", "np-xdp": "ferry, XDP (native)",
         "np-tc": "ferry, --xdp=off (tc)", "np-iptables": "kube-proxy iptables (nft)"}
rate = defaultdict(dict)            # (n, method) -> {round: rate}
for r in rows:
    rate[(int(r["n"]), r["method"])][int(r["round"])] = float(r["rate"])
sizes = sorted({int(r["n"]) for r in rows})


def ratio(n, m, base):
    a, b = rate.get((n, m), {}), rate.get((n, base), {})
    xs = [a[k] / b[k] for k in a if k in b and b[k] > 0]
    return statistics.median(xs) if xs else None


with open(os.path.join(d, "summary-nodeport.csv"), "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["n", "method", "rounds", "median_rate", "min_rate", "max_rate",
                "ratio_to_direct", "ratio_to_iptables"])
    for n in sizes:
        for m in methods:
            xs = list(rate.get((n, m), {}).values())
            if not xs:
                continue
            rd, ri = ratio(n, m, "np-direct"), ratio(n, m, "np-iptables")
            w.writerow([n, m, len(xs), "%.0f" % statistics.median(xs), "%.0f" % min(xs),
                        "%.0f" % max(xs), "" if rd is None else "%.3f" % rd,
                        "" if ri is None else "%.3f" % ri])

out = ["| N | " + " | ".join(label[m] for m in methods) + " | XDP / direct | tc / direct | XDP / iptables |",
       "|---:|" + "---:|" * (len(methods) + 3)]
for n in sizes:
    cells = []
    for m in methods:
        xs = list(rate.get((n, m), {}).values())
        cells.append("%.0f (%.0f-%.0f)" % (statistics.median(xs), min(xs), max(xs)) if xs else "-")
    for m, base in (("np-xdp", "np-direct"), ("np-tc", "np-direct"), ("np-xdp", "np-iptables")):
        x = ratio(n, m, base)
        cells.append("-" if x is None else "%.2f" % x)
    out.append("| %d | %s |" % (n, " | ".join(cells)))
text = "\n".join(out) + "\n"
open(os.path.join(d, "nodeport.md"), "w").write(text)
print(text, end="")
PY
say "done in $((SECONDS - T0)) s: $OUT"
