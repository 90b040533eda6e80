#!/usr/bin/env bash
# B34: what someone else removes from the datapath while ferryd runs is put
# back within a few --resync-period passes (1 s here), each repair logged and
# counted in ferry_datapath_repairs_total{kind}. ferryd runs inside the node
# namespace (FERRYD_NETNS), whose veth np1 carries the node's address, so
# the per-packet path is attached too.
#  - programs: each of the 9 cgroup links (sock_release too: big uses
#    least-conn) detached (bpftool link detach on
#    the link pinned under this run's folder, so on this run's cgroup only),
#    the XDP and tcx ingress and egress links of np1 detached, and, with --tcx off, the
#    tc egress clsact filter deleted (tc filter del): each is attached again,
#    and TCP and UDP through the ClusterIP (v4 and v6) work afterwards;
#  - maps: in ferry_services4 (a frontend, a VIP marker), ferry_slots (a
#    Service of 17 endpoints: too many to ride inline), ferry_backends and
#    ferry_revnat, an entry deleted, one altered and a stray one added, one
#    map at a time: each map is back to exactly what it held (its dump),
#    the counters of kind entry_missing, entry_altered and entry_unknown
#    move by one each (ferry_services4: 2 missing), and both Services answer
#    with getpeername() showing the ClusterIP;
#  - a steady state repairs nothing (no kind) over several passes, also
#    after a restart that adopted the maps.
# shellcheck disable=SC2317 # functions run through wait_until
# shellcheck source=tests/lib.sh
source "$(dirname "$0")/../lib.sh"

topology_up
FERRYD_NETNS=$NODE
if ! { ip -n "$NODE" link add np1 type veth peer name np1peer &&
	ip -n "$NODE" link set np1 up && ip -n "$NODE" link set np1peer up &&
	ip -n "$NODE" addr add 192.0.2.1/24 dev np1; }; then
	not_ok "heal setup" "veth np1"
	finish
fi
for i in 1 2; do
	pod "web-$i" "198.18.34.$i" "fd00:198:18:34::$i" --tcp 8080 --udp 5353
done
# big's 17 endpoints: addresses of the two pods, odd ones web-1's.
BIG_EPS=
for i in $(seq 1 17); do
	ip -n "${POD_NS[web-$((2 - i % 2))]}" addr add "198.18.35.$i/15" dev eth0 ||
		{ not_ok "heal setup" "address 198.18.35.$i"; finish; }
	BIG_EPS="$BIG_EPS- {addresses: [198.18.35.$i], conditions: {ready: true}}
"
done

SRC=$WORK/heal.yaml
write_source "$SRC" <<EOF
apiVersion: v1
kind: Service
metadata: {name: web, namespace: heal}
spec:
  clusterIP: 10.96.34.10
  clusterIPs: [10.96.34.10, "fd00:10:96::34"]
  ipFamilies: [IPv4, IPv6]
  ipFamilyPolicy: RequireDualStack
  ports:
  - {name: http, port: 80, protocol: TCP, targetPort: 8080}
  - {name: dns, port: 53, protocol: UDP, targetPort: 5353}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-v4, namespace: heal, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{name: http, port: 8080, protocol: TCP}, {name: dns, port: 5353, protocol: UDP}]
endpoints:
- {addresses: [198.18.34.1], conditions: {ready: true}}
- {addresses: [198.18.34.2], conditions: {ready: true}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-v6, namespace: heal, labels: {kubernetes.io/service-name: web}}
addressType: IPv6
ports: [{name: http, port: 8080, protocol: TCP}, {name: dns, port: 5353, protocol: UDP}]
endpoints:
- {addresses: ["fd00:198:18:34::1"], conditions: {ready: true}}
- {addresses: ["fd00:198:18:34::2"], conditions: {ready: true}}
---
apiVersion: v1
kind: Service
metadata: {name: big, namespace: heal, annotations: {ferry.io/lb-algorithm: least-conn}}
spec:
  clusterIP: 10.96.35.10
  ports: [{name: http, port: 80, protocol: TCP, targetPort: 8080}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: big, namespace: heal, labels: {kubernetes.io/service-name: big}}
addressType: IPv4
ports: [{name: http, port: 8080, protocol: TCP}]
endpoints:
$BIG_EPS
EOF

MPORT=10249
metric() {
	in_node curl -sS --max-time 3 -o "$WORK/metrics.txt" "http://127.0.0.1:$MPORT/metrics" &&
		"$PYTHON" "$REPO/tests/helpers/prom.py" value "$WORK/metrics.txt" "$1"
}
repairs() { metric "ferry_datapath_repairs_total{kind=\"$1\"}"; }
# passes: how many checks ferryd has made (its debug line per pass).
passes() { grep -c 'datapath checked in' "$FERRYD_LOG"; }
passes_above() { [ "$(passes)" -gt "$1" ]; }
# wait_passes N: until ferryd has made N more checks.
wait_passes() { wait_until $(($1 * 3 + 5)) passes_above $(($(passes) + $1)); }

link_info() { bpftool -j link show pinned "$BPFFS/links/$1" 2>/dev/null; }
link_id() { link_info "$1" | "$PYTHON" -c 'import json, sys; print(json.load(sys.stdin)["id"])' 2>/dev/null; }
# link_where NAME: "ID WHERE" of the link pinned as NAME, from the kernel's
# bpf_link_info (bpftool 7.1 shows no ifindex): WHERE is the cgroup ID of a
# cgroup link, the ifindex of an XDP or tcx link, 0 once detached.
link_where() {
	"$PYTHON" -c '
import ctypes, platform, struct, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
NR = {"x86_64": 321, "aarch64": 280}[platform.machine()]
def bpf(cmd, attr):
    return libc.syscall(ctypes.c_long(NR), ctypes.c_int(cmd), attr, ctypes.c_uint(len(attr)))
path = ctypes.create_string_buffer(sys.argv[1].encode())
attr = ctypes.create_string_buffer(128)
struct.pack_into("Q", attr, 0, ctypes.addressof(path))
fd = bpf(7, attr)  # BPF_OBJ_GET
if fd < 0:
    sys.exit(1)
info = ctypes.create_string_buffer(256)
attr = ctypes.create_string_buffer(128)
struct.pack_into("IIQ", attr, 0, fd, len(info), ctypes.addressof(info))
if bpf(15, attr) < 0:  # BPF_OBJ_GET_INFO_BY_FD
    sys.exit(1)
kind, lid = struct.unpack_from("II", info, 0)
where = struct.unpack_from("Q" if kind == 3 else "I", info, 16)[0]  # 3: cgroup
print(lid, where)' "$BPFFS/links/$1"
}
# link_serves NAME OLD-ID: the link pinned as NAME is a new one (not
# OLD-ID), attached to this run's cgroup or to np1.
CG_ID=$(stat -c %i "$CG")
NP1_INDEX=$(ip -n "$NODE" -o link show np1 | cut -d: -f1)
link_serves() {
	local w
	w=$(link_where "$1") || return 1
	[ "${w% *}" != "$2" ] && { [ "${w#* }" = "$CG_ID" ] || [ "${w#* }" = "$NP1_INDEX" ]; }
}

# works: TCP and UDP through the ClusterIP, v4 and v6, with getpeername.
works() {
	local out fail=
	for a in 10.96.34.10 fd00:10:96::34; do
		out=$(probe tcp "$a" 80) && [[ $out =~ ^reply=web-[12]\ peer=\[?$a\]?:80 ]] || fail="$fail tcp:$a($out)"
		out=$(probe udp "$a" 53) && [[ $out =~ ^reply=web-[12]\ from=\[?$a\]?:53 ]] || fail="$fail udp:$a($out)"
	done
	for i in 1 2 3 4; do
		out=$(probe tcp 10.96.35.10 80) && [[ $out =~ ^reply=web-[12]\ peer=10\.96\.35\.10:80 ]] || fail="$fail tcp:10.96.35.10($out)"
	done
	[ -z "$fail" ] || { echo "$fail"; return 1; }
}
expect_works() {
	local why
	if why=$(works); then ok "$1"; else not_ok "$1" "$why"; fi
}

ferryd_start "$SRC" --node-ips 192.0.2.1 --resync-period 1 --max-backends 256 --metrics-addr "127.0.0.1:$MPORT" ||
	finish
wait_until 15 test -e "$BPFFS/links/tc-egress-np1" ||
	{ not_ok "heal setup" "no per-packet link on np1"; finish; }
expect_works "TCP and UDP through the ClusterIP before anything is removed"

# --- programs ---------------------------------------------------------------
before=$(repairs program)
hooks="connect4 connect6 sendmsg4 sendmsg6 recvmsg4 recvmsg6 getpeername4 getpeername6 sock_release xdp-np1 tc-ingress-np1 tc-egress-np1"
# All at once, then each is looked for: one pass finds them all.
declare -A detached
for h in $hooks; do
	id=$(link_id "$h")
	if [ -z "$id" ] || ! bpftool link detach id "$id"; then
		not_ok "B34 $h detached (bpftool link detach) is attached again" "cannot detach link '$id'"
		continue
	fi
	detached[$h]=$id
done
for h in $hooks; do
	[ -n "${detached[$h]:-}" ] || continue
	if wait_until 10 link_serves "$h" "${detached[$h]}"; then
		ok "B34 $h detached (bpftool link detach) is attached again"
	else
		not_ok "B34 $h detached (bpftool link detach) is attached again" "link (id where): $(link_where "$h")"
	fi
done
n_hooks=$(wc -w <<<"$hooks")
expect "B34 each program attached again is logged once, naming it" \
	"$(grep -c "program was detached" "$FERRYD_LOG")" "$n_hooks"
grep "program was detached" "$FERRYD_LOG" | sed 's/^/# /' | head -n "$n_hooks"
expect_works "B34 TCP and UDP through the ClusterIP after every program was detached"
after=$(repairs program)
expect "B34 ferry_datapath_repairs_total{kind=\"program\"} counts the $n_hooks programs attached again" \
	"$((${after%.*} - ${before%.*}))" "$n_hooks"

steady=$(repairs program)
wait_passes 2 || not_ok "ferryd checks every second (--resync-period 1)" "passes: $(passes)"
expect "B34 a steady state repairs nothing over 2 passes" "$(repairs program)" "$steady"

# --- maps -------------------------------------------------------------------
# dump MAP: the pinned map's entries, sorted "KEY VALUE" lines in hex (of an
# array, ferry_backends, the elements not empty).
dump() {
	bpftool -j map dump pinned "$BPFFS/$1" | "$PYTHON" -c '
import json, sys
for e in sorted("".join(b[2:] for b in x["key"]) + " " + "".join(b[2:] for b in x["value"])
                for x in json.load(sys.stdin) if any(int(b, 16) for b in x["value"])):
    print(e)'
}
same() { [ "$(dump "$1")" = "$(cat "$WORK/$1.before")" ]; }
# shellcheck disable=SC2001 # a space after every byte
sp() { sed 's/../& /g' <<<"$1"; }
# shellcheck disable=SC2046 # hex bytes as words
mdel() { bpftool map delete pinned "$BPFFS/$1" key hex $(sp "$2"); }
# shellcheck disable=SC2046
mput() { bpftool map update pinned "$BPFFS/$1" key hex $(sp "$2") value hex $(sp "$3"); }
value_of() { awk -v k="$2" '$1 "" == k "" {print $2}' "$WORK/$1.before"; } # as strings: keys of digits only are numbers to awk
key_at() { sed -n "$2p" "$WORK/$1.before" | cut -d' ' -f1; }
# flip HEX OFFSET: HEX with the byte at OFFSET inverted.
flip() { echo "${1:0:$2*2}$(printf %02x $((0x${1:$2*2:2} ^ 0xff)))${1:$2*2+2}"; }
counts() { echo "$(repairs entry_missing) $(repairs entry_altered) $(repairs entry_unknown)"; }
# moved BEFORE: how the three counters moved since BEFORE ("M A U").
moved() {
	local now b
	read -r -a now <<<"$(counts)"
	read -r -a b <<<"$1"
	echo "$((${now[0]%.*} - ${b[0]%.*})) $((${now[1]%.*} - ${b[1]%.*})) $((${now[2]%.*} - ${b[2]%.*}))"
}
# repaired MAP WANT-MOVED WHAT: wait until MAP holds what it held, then the
# counters' move.
repaired() {
	if wait_until 10 same "$1"; then
		ok "B34 $1: $3: back to what ferryd wrote"
	else
		not_ok "B34 $1: $3: back to what ferryd wrote" "$(diff <(dump "$1") "$WORK/$1.before" | head -n 6 | cut -c1-100 | tr '\n' ' ')"
	fi
	expect "B34 $1: the repairs counted (entry_missing entry_altered entry_unknown)" \
		"$(moved "$before")" "$2"
}

V4=00000000000000000000ffff
for m in ferry_services4 ferry_slots ferry_backends ferry_revnat; do dump "$m" >"$WORK/$m.before"; done
note "entries: services $(wc -l <"$WORK/ferry_services4.before"), slots $(wc -l <"$WORK/ferry_slots.before"), backends $(wc -l <"$WORK/ferry_backends.before"), revnat $(wc -l <"$WORK/ferry_revnat.before")"
expect "the Service of 17 endpoints has 17 slots" "$(wc -l <"$WORK/ferry_slots.before")" 17

before=$(counts)
# ferry_services4's keys: address, port, protocol, scope (svc_key4).
web=0a60220a00500600
mdel ferry_services4 "$web"
mdel ferry_services4 0a60230a00000000 # big's VIP marker
mput ferry_services4 0a60230a00500600 "$(flip "$(value_of ferry_services4 0a60230a00500600)" 8)"
mput ferry_services4 0a60630a00500600 "$(value_of ferry_services4 "$web")"
repaired ferry_services4 "2 1 1" "a frontend and a VIP marker deleted, a count altered, a stray frontend"

before=$(counts)
k3=$(key_at ferry_slots 3) k5=$(key_at ferry_slots 5)
mdel ferry_slots "$k3"
mput ferry_slots "$k5" "$(flip "$(value_of ferry_slots "$k5")" 23)"
mput ferry_slots "$(flip "$k3" 4)" "$(value_of ferry_slots "$k5")" # another revision
repaired ferry_slots "1 1 1" "a slot deleted, one's backend address altered, a stray one"

before=$(counts)
k2=$(key_at ferry_backends 2) k4=$(key_at ferry_backends 4)
mput ferry_backends "$k2" "$(printf "%048d" 0)" # an array: emptied
mput ferry_backends "$k4" "$(flip "$(value_of ferry_backends "$k4")" 17)"
mput ferry_backends e8030000 "$(value_of ferry_backends "$k4")"
repaired ferry_backends "1 1 1" "a backend emptied, one's port altered, a stray ID"

before=$(counts)
r1=${V4}c61222011f900600 r2=${V4}c61222021f900600
mdel ferry_revnat "$r1"
mput ferry_revnat "$r2" "$(flip "$(value_of ferry_revnat "$r2")" 15)"
mput ferry_revnat "${V4}c61263091f900600" "$(value_of ferry_revnat "$r2")"
repaired ferry_revnat "1 1 1" "an owner's entry deleted, one naming another ClusterIP, a stray one"
expect_works "B34 TCP and UDP through both ClusterIPs after the maps were put back"

steady=$(counts)
wait_passes 2 || not_ok "ferryd checks every second (--resync-period 1)" "passes: $(passes)"
expect "B34 a steady state repairs no entry over 2 passes" "$(moved "$steady")" "0 0 0"
total=0
for k in program entry_missing entry_altered entry_unknown; do total=$((total + $(repairs "$k" | cut -d. -f1))); done
expect "B34 ferryctl status shows the repairs /metrics counted" \
	"$(status_get 'j["agent"]["datapath_repairs"]')" "$total"

# --- clsact filters (--tcx off) ---------------------------------------------
filter_id() {
	in_node tc filter show dev np1 egress 2>/dev/null |
		awk '/pref 1 bpf/ && /handle 0xf377/ { for (i = 1; i <= NF; i++) if ($i == "id") print $(i + 1) }'
}
has_filter() { [ -n "$(filter_id)" ]; }
ferryd_stop
ferryd_start "$SRC" --node-ips 192.0.2.1 --resync-period 1 --max-backends 256 --tcx off --metrics-addr "127.0.0.1:$MPORT" ||
	finish
wait_until 15 has_filter || { not_ok "heal setup" "no tc filter on np1"; finish; }
before=$(repairs program)
in_node tc filter del dev np1 egress pref 1 handle 0xf377 bpf
if wait_until 10 has_filter; then
	ok "B34 the tc egress clsact filter deleted (tc filter del) is attached again"
else
	not_ok "B34 the tc egress clsact filter deleted (tc filter del) is attached again" "none on np1"
fi
# The counter moves once the pass that put the filter back ends: a moment
# after the filter is there again.
filter_counted() { [ "$(($(repairs program | cut -d. -f1) - ${before%.*}))" -ge 1 ]; }
wait_until 5 filter_counted
expect "B34 ferry_datapath_repairs_total{kind=\"program\"} counts the filter" \
	"$(($(repairs program | cut -d. -f1) - ${before%.*}))" 1
expect_works "B34 TCP and UDP through the ClusterIP after the filter came back"
wait_passes 3 || not_ok "ferryd checks every second (--resync-period 1)" "passes: $(passes)"
expect "B34 a ferryd that adopted the maps repairs no entry (entry_missing entry_altered entry_unknown)" \
	"$(counts | sed 's/\.0*//g')" "0 0 0"

finish
