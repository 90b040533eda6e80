#!/usr/bin/env bash
# ferry_fast4 (issue 13): the common IPv4 ClusterIP port in one 64-byte
# entry, read by connect4 (and a v4-mapped connect6) before ferry_services4.
# What a user sees, with real clients in the real kernel, and what the table
# holds (bpftool's dump of the pinned array, its fields named by BTF; the
# entries in use are those with port_word != 0):
#  a. a TCP and a UDP ClusterIP of 3 endpoints on one port are one entry
#     each (address, port, count, backends, an even seq), within its probes;
#     the table holds exactly the eligible ports (ferryctl counts the same);
#     every backend is reached, also from a v4-mapped socket, getpeername()
#     shows the ClusterIP (B18, B20, B32); a port the Service lacks is
#     refused (B17);
#  b. left out, and served as before through ferry_services4: session
#     affinity (B30; toggled live in and out), 13 endpoints (12 are in),
#     endpoints on two ports (B7), round-robin, a NodePort's NodePort and
#     externalIP frontends (B22, B25; its ClusterIP is in), a backend
#     another ClusterIP port owns in ferry_revnat (its owner is in; the
#     other takes it over once the owner is gone and it writes its set);
#  c. endpoints 3 -> 2 -> one replaced -> none: the entry follows, and once
#     the generation is published no new connection reaches a removed
#     backend, not even from a held connection's source port (B12,
#     kubernetes#81775), the held one is not cut; none: refused (B14);
#  d. a deleted Service's entry is gone and its ClusterIP reaches nothing
#     (B5);
#  e. while ferryd runs, an entry altered (even seq, a wrong backend) and
#     one deleted out of band are put back by the resync, as every other
#     map's are (B34, heal.sh). While it is down (nothing writes the table,
#     the pinned programs read it): an entry made odd is passed over
#     (ferry_services4 answers), also when it names a wrong backend, TCP and
#     UDP; the same wrong entry even (a control) is followed: the datapath
#     reads the table, and only the seq tells the two apart;
#  f. a restart over the pins mends what was done while ferryd was down (an
#     entry corrupted with an even seq, one zeroed, one left odd, a stray
#     one for an address of no Service): the table is again what it was, its
#     Services answer from their backends, the stray address is no longer
#     translated (B33); a restart with other map sizes (a migration) fills
#     a new table the programs read;
#  g. a client connecting in a loop (build/tests/churn) while the endpoints
#     flip 40 times between sets of 1 and 3: every connection succeeds and
#     reaches a backend of a set published within its window, never the
#     decoy, getpeername() the ClusterIP (B12, B14, B20).
# A decoy pod (198.18.77.9), in no Service, listens on every port: a wrong
# translation answers "decoy" instead of failing silently.
# shellcheck disable=SC2317 # functions run through wait_until
# shellcheck source=tests/lib.sh
source "$(dirname "$0")/../lib.sh"

DECOY=198.18.77.9
FAST=$BPFFS/ferry_fast4

topology_up
for i in 1 2 3 4; do
	pod "f-$i" "198.18.77.$i" "" --tcp 8079 --tcp 8080 --tcp 8081 --tcp 8082 --tcp 8083 --tcp 8084 \
		--tcp 8085 --tcp 8086 --tcp 8087 --tcp 8088 --tcp 8089 --udp 53
done
pod decoy "$DECOY" "" --tcp 8079 --tcp 8080 --tcp 8081 --tcp 8082 --tcp 8083 --tcp 8084 \
	--tcp 8085 --tcp 8086 --tcp 8087 --tcp 8088 --tcp 8089 --udp 53
# big's endpoints: 198.18.78.1-13, on pods f-1..f-4 in turn.
for i in $(seq 1 13); do
	ip -n "${POD_NS[f-$(((i - 1) % 4 + 1))]}" addr add "198.18.78.$i/15" dev eth0 ||
		{ not_ok "fast setup" "address 198.18.78.$i"; finish; }
done

# --- the table, read with bpftool ------------------------------------------

# fast.py CMD DUMP ARGS: over a `bpftool -j map dump` of ferry_fast4 (file
# DUMP), its used entries (port_word != 0) by their BTF field names.
#   keys                  the frontends held: "ADDR:PORT/PROTO ...", sorted
#   entry ADDR PORT PROTO "count=N port=P backends=A,B,.. seq=even|odd"
#                         (backends sorted), "absent", or "duplicate N"
#   content               one line per frontend, "ADDR:PORT/PROTO count=N
#                         port=P backends=..." (no seq, no index), sorted
#   placed                "yes" when every entry lies within FERRY_FAST_PROBES
#                         (4) of its home (include/ferry/hash.h) and every
#                         seq is even, else what is not
#   size                  the table's entries
#   stray ADDR PORT PROTO BACKEND BPORT: "KEYHEX | VALUEHEX", an even entry
#                         for a frontend of no Service, at a free index of
#                         its probes
#   write ADDR PORT PROTO MODE [ADDR]: "KEYHEX | VALUEHEX" for bpftool map
#                         update: the entry with its seq made odd (odd), with
#                         every backend ADDR and the seq odd (wrong-odd) or
#                         the next even one (wrong-even), or all zero (zero)
cat >"$WORK/fast.py" <<'PY'
import json, socket, struct, sys

SEED = 0x9e3779b9
M = 0xffffffff


def final(h, n):
    h ^= n
    h ^= h >> 16
    h = (h * 0x85ebca6b) & M
    h ^= h >> 13
    h = (h * 0xc2b2ae35) & M
    return h ^ (h >> 16)


def home(addr, word, mask):
    return final(addr ^ ((word * SEED) & M), 0) & mask


def ip(v):
    return socket.inet_ntoa(struct.pack("<I", v))


def load(path):
    with open(path) as f:
        dump = json.load(f)
    rows = []
    for el in dump:
        v = el["formatted"]["value"]
        raw = bytes(int(b, 16) for b in el["value"])
        rows.append((el["formatted"]["key"], v, raw))
    return len(dump) - 1, rows


def key_of(v):
    w = v["port_word"]
    proto = {6: "TCP", 17: "UDP"}.get((w >> 16) & 0xff, str((w >> 16) & 0xff))
    port = socket.ntohs(w & 0xffff)
    scope = "" if w >> 24 == 0 else "/scope%d" % (w >> 24)
    return "%s:%d/%s%s" % (ip(v["addr"]), port, proto, scope)


def describe(v):
    n = v["count"]
    bs = sorted(ip(b) for b in v["backend"][:n])
    return "count=%d port=%d backends=%s" % (n, socket.ntohs(v["port"]), ",".join(bs))


def main():
    cmd, path = sys.argv[1], sys.argv[2]
    mask, rows = load(path)
    used = [(i, v, raw) for i, v, raw in rows if v["port_word"] != 0]
    if cmd == "keys":
        order = lambda v: (socket.inet_aton(ip(v["addr"])), v["port_word"])
        print(" ".join(key_of(v) for v in sorted((v for _, v, _ in used), key=order)))
    elif cmd == "content":
        for line in sorted("%s %s" % (key_of(v), describe(v)) for _, v, _ in used):
            print(line)
    elif cmd == "placed":
        bad = []
        for i, v, _ in used:
            h = home(v["addr"], v["port_word"], mask)
            if (i - h) & mask >= 4:
                bad.append("%s at %d, home %d" % (key_of(v), i, h))
            if v["seq"] & 1:
                bad.append("%s seq %d" % (key_of(v), v["seq"]))
        print("; ".join(bad) or "yes")
    elif cmd in ("entry", "write"):
        want = "%s:%s/%s" % tuple(sys.argv[3:6])
        hits = [(i, v, raw) for i, v, raw in used if key_of(v) == want]
        if cmd == "entry":
            if not hits:
                print("absent")
            elif len(hits) > 1:
                print("duplicate %d" % len(hits))
            else:
                v = hits[0][1]
                print("%s seq=%s" % (describe(v), "odd" if v["seq"] & 1 else "even"))
            return
        if len(hits) != 1:
            sys.exit("write: %d entries for %s" % (len(hits), want))
        i, v, raw = hits[0]
        mode = sys.argv[6]
        val = bytearray(raw)
        seq = v["seq"]
        # Odd: the seq made odd (seq + 1 from an even one); even: the next
        # even one after that.
        odd = seq | 1
        if mode == "odd":
            struct.pack_into("<I", val, 0, odd)
        elif mode in ("wrong-odd", "wrong-even"):
            struct.pack_into("<I", val, 0, odd if mode == "wrong-odd" else (odd + 1) & M)
            bad = struct.unpack("<I", socket.inet_aton(sys.argv[7]))[0]
            for k in range(12):
                struct.pack_into("<I", val, 16 + 4 * k, bad if k < v["count"] else 0)
        elif mode == "zero":
            val = bytearray(len(raw))
        else:
            sys.exit("write: mode " + mode)
        print(" ".join("%02x" % b for b in struct.pack("<I", i)), "|",
              " ".join("%02x" % b for b in val))
    elif cmd == "stray":
        # An entry for a frontend of no Service (ADDR PORT PROTO) naming
        # backend BACKEND:BPORT, even, at the first free index of its probes.
        a = struct.unpack("<I", socket.inet_aton(sys.argv[3]))[0]
        word = socket.htons(int(sys.argv[4])) | {"TCP": 6, "UDP": 17}[sys.argv[5]] << 16
        b = struct.unpack("<I", socket.inet_aton(sys.argv[6]))[0]
        taken = {i for i, _, _ in used}
        h = home(a, word, mask)
        free = [(h + k) & mask for k in range(4) if (h + k) & mask not in taken]
        if not free:
            sys.exit("stray: no free entry near %d" % h)
        val = struct.pack("<IIIHH12I", 2, a, word, 1, socket.htons(int(sys.argv[7])), b, *[0] * 11)
        print(" ".join("%02x" % x for x in struct.pack("<I", free[0])), "|",
              " ".join("%02x" % x for x in val))
    elif cmd == "size":
        print(mask + 1)
    else:
        sys.exit("fast.py: " + cmd)


main()
PY

# fast CMD ARGS...: fast.py over a fresh dump of the pinned table.
fast() {
	local cmd=$1 dump=$WORK/fast.$BASHPID.json
	shift
	bpftool -j map dump pinned "$FAST" >"$dump" 2>>"$LOGDIR/bpftool.log" || { echo "dump-failed"; return; }
	"$PYTHON" "$WORK/fast.py" "$cmd" "$dump" "$@"
}

# fast_write ADDR PORT PROTO MODE [ADDR]: the entry rewritten out of band
# (FAST_CMD=stray: ADDR PORT PROTO BACKEND BPORT, a stray entry added).
fast_write() {
	local out key val
	out=$(fast "${FAST_CMD:-write}" "$@") || return 1
	key=${out%% | *}
	val=${out##* | }
	# shellcheck disable=SC2086
	bpftool map update pinned "$FAST" key hex $key value hex $val >>"$LOGDIR/bpftool.log" 2>&1
}

# fast_restore ADDR PORT PROTO DUMP: the entry as it was in DUMP (a file of
# `bpftool -j map dump`), written back at its index.
fast_restore() {
	local out key val
	out=$("$PYTHON" - "$4" "$1:$2/$3" <<'PY'
import json, socket, struct, sys
for el in json.load(open(sys.argv[1])):
    v = el["formatted"]["value"]
    w = v["port_word"]
    if not w:
        continue
    key = "%s:%d/%s" % (socket.inet_ntoa(struct.pack("<I", v["addr"])), socket.ntohs(w & 0xffff),
                        {6: "TCP", 17: "UDP"}.get((w >> 16) & 0xff, "?"))
    if key == sys.argv[2]:
        print(" ".join("%02x" % int(b, 16) for b in el["key"]), "|",
              " ".join("%02x" % int(b, 16) for b in el["value"]))
        break
PY
)
	[ -n "$out" ] || return 1
	key=${out%% | *}
	val=${out##* | }
	# shellcheck disable=SC2086
	bpftool map update pinned "$FAST" key hex $key value hex $val >>"$LOGDIR/bpftool.log" 2>&1
}

save_dump() { bpftool -j map dump pinned "$FAST" >"$1" 2>>"$LOGDIR/bpftool.log"; }

# --- the Services: one file each in the source folder ------------------------

SRC=$WORK/src
mkdir "$SRC"

# svc NAME IP [EXTRA-SPEC-LINES] [ANNOTATIONS]: a Service of one port, 80
# TCP unless PORT and PROTO say; NODEPORT gives it that nodePort.
svc() {
	local name=$1 ip=$2 extra=${3:-} ann=
	[ -z "${4:-}" ] || ann=", annotations: {$4}"
	cat <<EOF
---
apiVersion: v1
kind: Service
metadata: {name: $name, namespace: fast$ann}
spec:
  clusterIP: $ip
  ports: [{port: ${PORT:-80}, protocol: ${PROTO:-TCP}${NODEPORT:+, nodePort: $NODEPORT}}]
$extra
EOF
}

# slice NAME SUFFIX PORT ADDR...: an EndpointSlice of Service NAME; an ADDR
# N alone is pod f-N's address, 198.18.77.N.
slice() {
	local name=$1 suffix=$2 port=$3
	shift 3
	cat <<EOF
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: $name-$suffix, namespace: fast, labels: {kubernetes.io/service-name: $name}}
addressType: IPv4
ports: [{port: $port, protocol: ${PROTO:-TCP}}]
EOF
	if [ $# -gt 0 ]; then echo "endpoints:"; else echo "endpoints: []"; fi
	for a; do
		[[ $a == *.* ]] || a=198.18.77.$a
		echo "- {addresses: [\"$a\"], conditions: {ready: true}}"
	done
}

big_eps() { for i in $(seq 1 "$1"); do echo "198.18.78.$i"; done; }

# Every Service uses backend ports of its own: a backend that two ClusterIP
# ports share is owned (ferry_revnat) by one only, which alone would keep
# the other out of the table.
{ svc web 10.96.77.1; slice web a 8080 1 2 3; } | write_source "$SRC/web.yaml"
{ PROTO=UDP PORT=53 svc dns 10.96.77.2; PROTO=UDP slice dns a 53 1 2 3; } | write_source "$SRC/dns.yaml"
{ svc aff 10.96.77.3 "  sessionAffinity: ClientIP"; slice aff a 8081 1 2 3; } | write_source "$SRC/aff.yaml"
# shellcheck disable=SC2046 # one address a word
{ svc big 10.96.77.4; slice big a 8088 $(big_eps 12); } | write_source "$SRC/big.yaml"
{ svc two 10.96.77.5; slice two a 8083 1 2; slice two b 8084 3; } | write_source "$SRC/two.yaml"
{ svc rr 10.96.77.6 "" "ferry.io/lb-algorithm: round-robin"; slice rr a 8082 1 2 3; } | write_source "$SRC/rr.yaml"
{ NODEPORT=30077 svc np 10.96.77.7 "  type: NodePort
  externalIPs: [192.0.2.77]"; slice np a 8085 1 2; } | write_source "$SRC/np.yaml"
churn_yaml() { svc churn 10.96.77.8; slice churn a 8086 "$@"; }
churn_yaml 1 | write_source "$SRC/churn.yaml"
chg_yaml() { svc chg 10.96.77.9; slice chg a 8087 "$@"; }
chg_yaml 1 2 3 | write_source "$SRC/chg.yaml"
{ svc del 10.96.77.10; slice del a 8089 1 2; } | write_source "$SRC/del.yaml"
# own and shr share the backend f-1:8079 (shr has f-2:8079 too): one of
# them owns it in ferry_revnat, own, the first to take it.
{ svc own 10.96.77.11; slice own a 8079 1; } | write_source "$SRC/own.yaml"

# ferryd in the node's namespace (the loopback NodePort is its own, B22);
# no node address, so no device gets the per-packet programs. 256 service
# ports make a table of 512 entries, two per port (a dump of a few KiB); a
# resync each second (B34).
FERRYD_NETNS=$NODE
FERRYD_ARGS=(--max-services 256 --resync-period 1)
ferryd_start "$SRC" "${FERRYD_ARGS[@]}" || finish

# names_in OUTPUT: the reply= names of probe.py lines, sorted, unique.
names_in() { sed -n 's/^reply=\([^ ]*\).*/\1/p' <<<"$1" | sort -u | tr '\n' ' ' | sed 's/ $//'; }
# peers_in OUTPUT: the distinct peer= values, and every error line.
peers_in() { { sed -n 's/.* peer=\([^ ]*\).*/\1/p' <<<"$1" | sort -u; grep '^error=' <<<"$1"; } | tr '\n' ' ' | sed 's/ $//'; }

# === a. the common ClusterIP ports ==========================================

expect "the table holds exactly the eligible ClusterIP ports (web, dns, big of 12, np's ClusterIP, churn, chg, del, own)" \
	"$(fast keys)" \
	"10.96.77.1:80/TCP 10.96.77.2:53/UDP 10.96.77.4:80/TCP 10.96.77.7:80/TCP 10.96.77.8:80/TCP 10.96.77.9:80/TCP 10.96.77.10:80/TCP 10.96.77.11:80/TCP"
expect "ferryctl status --maps counts the same 8 entries in ferry_fast4" \
	"$(status_get --maps '[m["entries"] for m in j["maps"] if m["name"] == "ferry_fast4"]')" "[8]"
expect "every entry lies within 4 probes of its home, its seq even" "$(fast placed)" yes
expect "web (TCP, 3 endpoints on 8080): one entry, its 3 backends, an even seq" \
	"$(fast entry 10.96.77.1 80 TCP)" "count=3 port=8080 backends=198.18.77.1,198.18.77.2,198.18.77.3 seq=even"
expect "dns (UDP, 3 endpoints on 53): one entry, its 3 backends, an even seq" \
	"$(fast entry 10.96.77.2 53 UDP)" "count=3 port=53 backends=198.18.77.1,198.18.77.2,198.18.77.3 seq=even"

t=$(conn_tally 60 10.96.77.1 80)
note "web x60: $t"
expect "B18 web: 60 TCP connections reach all 3 backends, nothing else, none fails" "$(names_of "$t")" "f-1 f-2 f-3"
t=$(conn_tally 60 ::ffff:10.96.77.1 80)
note "web v4-mapped x60: $t"
expect "B18 web: 60 connections from an AF_INET6 socket to ::ffff:10.96.77.1 reach all 3" "$(names_of "$t")" "f-1 f-2 f-3"
out=$(probe tcp 10.96.77.1 80 --count 10)
expect "B20 web: getpeername() on 10 TCP connections returns the ClusterIP, each answered by a backend" \
	"$(peers_in "$out") / $(names_in "$out" | tr ' ' '\n' | grep -cv '^f-[123]$')" "10.96.77.1:80 / 0"
out=$(probe tcp 10.96.77.1 80 --count 5 --family 6)
expect "B20 web: getpeername() on a v4-mapped socket returns [::ffff:10.96.77.1]:80" "$(peers_in "$out")" "[::ffff:10.96.77.1]:80"
out=$(probe udp 10.96.77.2 53 --connect --count 45)
note "dns connected x45: $(names_in "$out")"
expect "B32 dns: 45 connected UDP sockets reach all 3 backends, none fails" "$(names_in "$out") $(grep -c '^error=' <<<"$out")" "f-1 f-2 f-3 0"
expect "B20 dns: getpeername() on each connected UDP socket returns the ClusterIP" "$(peers_in "$out")" "10.96.77.2:53"
expect "B20 dns: every reply to a connected UDP socket comes from the ClusterIP" \
	"$(sed -n 's/.* from=\([^ ]*\).*/\1/p' <<<"$out" | sort -u)" "10.96.77.2:53"
out=$(probe udp 10.96.77.2 53 --count 45)
expect "B20 dns: 45 unconnected UDP sockets (sendmsg, not the table) reach all 3, replies from the ClusterIP" \
	"$(names_in "$out") $(sed -n 's/.* from=\([^ ]*\).*/\1/p' <<<"$out" | sort -u) $(grep -c '^error=' <<<"$out")" \
	"f-1 f-2 f-3 10.96.77.2:53 0"

expect_match "B17 web: a port it does not define (81) is refused, the table holding port 80 only" \
	"$(probe tcp 10.96.77.1 81)" '^error=ECONNREFUSED stage=connect'

# === b. left out, served as before ===========================================

expect "B30 aff (sessionAffinity ClientIP): no entry" "$(fast entry 10.96.77.3 80 TCP)" absent
t=$(conn_tally 20 10.96.77.3 80)
expect_match "B30 aff: 20 connections from one client reach one backend" "$t" '^f-[123]=20$'
expect "big of 12 endpoints: one entry of 12 (the limit), its 12 backends" \
	"$(fast entry 10.96.77.4 80 TCP)" "count=12 port=8088 backends=$(big_eps 12 | LC_ALL=C sort | paste -sd,) seq=even"
# shellcheck disable=SC2046 # one address a word
{ svc big 10.96.77.4; slice big a 8088 $(big_eps 13); } | change "big: 12 -> 13 endpoints" "$SRC/big.yaml"
expect "big of 13 endpoints: no entry" "$(fast entry 10.96.77.4 80 TCP)" absent
t=$(CONN_PATH=/port conn_tally 80 10.96.77.4 80)
note "big x80: $t"
expect "big of 13: 80 connections answered by the 4 pods holding its 13 addresses, none fails" \
	"$(names_of "$t")" "f-1:8088 f-2:8088 f-3:8088 f-4:8088"
expect "two (endpoints on 8083 and 8084): no entry" "$(fast entry 10.96.77.5 80 TCP)" absent
t=$(CONN_PATH=/port conn_tally 60 10.96.77.5 80)
note "two x60: $t"
expect "B7 two: 60 connections reach each backend on its own port" "$(names_of "$t")" "f-1:8083 f-2:8083 f-3:8084"
expect "rr (ferry.io/lb-algorithm: round-robin): no entry" "$(fast entry 10.96.77.6 80 TCP)" absent
seq=$(in_client "$CONNCOUNT" -s -n 12 -t 60 10.96.77.6 80 | tr '\n' ' ' | sed 's/ $//')
expect "rr: 12 connections rotate exactly over the 3 pods" "$(rotation "$seq" 3)" exact
expect "np: its ClusterIP has an entry (2 backends)" \
	"$(fast entry 10.96.77.7 80 TCP)" "count=2 port=8085 backends=198.18.77.1,198.18.77.2 seq=even"
expect "np: its NodePort (0.0.0.0:30077) and externalIP have none" \
	"$(fast entry 0.0.0.0 30077 TCP) $(fast entry 192.0.2.77 80 TCP)" "absent absent"
t=$(conn_tally 30 127.0.0.1 30077)
expect "B22 np: 30 connections to the NodePort on 127.0.0.1 reach its 2 backends" "$(names_of "$t")" "f-1 f-2"
t=$(conn_tally 30 192.0.2.77 80)
expect "B25 np: 30 connections from the node to its externalIP reach its 2 backends" "$(names_of "$t")" "f-1 f-2"
{ svc aff 10.96.77.3; slice aff a 8081 1 2 3; } | change "aff: sessionAffinity removed" "$SRC/aff.yaml"
expect "B30 aff without session affinity (toggled live): now an entry of its 3 backends" \
	"$(fast entry 10.96.77.3 80 TCP)" "count=3 port=8081 backends=198.18.77.1,198.18.77.2,198.18.77.3 seq=even"
{ svc aff 10.96.77.3 "  sessionAffinity: ClientIP"; slice aff a 8081 1 2 3; } | change "aff: sessionAffinity back" "$SRC/aff.yaml"
expect "B30 aff with session affinity again: its entry is gone" "$(fast entry 10.96.77.3 80 TCP)" absent
t=$(conn_tally 20 10.96.77.3 80)
expect_match "B30 aff: again one backend for 20 connections" "$t" '^f-[123]=20$'

# A backend another ClusterIP port owns keeps shr out; its owner is in.
{ svc shr 10.96.77.12; slice shr a 8079 1 2; } | change "shr added, sharing f-1:8079 with own" "$SRC/shr.yaml"
expect "own (the owner of f-1:8079): an entry; shr (f-1:8079 not its own): none" \
	"$(fast entry 10.96.77.11 80 TCP) / $(fast entry 10.96.77.12 80 TCP)" \
	"count=1 port=8079 backends=198.18.77.1 seq=even / absent"
out=$(probe tcp 10.96.77.11 80 --count 5)
expect "B20 own: 5 connections reach f-1, getpeername() shows own's ClusterIP" \
	"$(names_in "$out") $(peers_in "$out")" "f-1 10.96.77.11:80"
out=$(probe tcp 10.96.77.12 80 --count 30)
expect "B20 shr: 30 connections reach f-1 and f-2, getpeername() shows shr's ClusterIP, not own's" \
	"$(names_in "$out") $(peers_in "$out")" "f-1 f-2 10.96.77.12:80"
g=$(generation)
rm -f "$SRC/own.yaml"
wait_generation $((g + 1)) 10 || not_ok "own deleted: a new generation is published" "still $(generation)"
{ svc shr 10.96.77.12; slice shr a 8079 1 2 3; } | change "shr grows to 3 after own left" "$SRC/shr.yaml"
expect "own deleted, shr rewritten: shr takes f-1:8079 over and has an entry of 3" \
	"$(fast entry 10.96.77.11 80 TCP) / $(fast entry 10.96.77.12 80 TCP)" \
	"absent / count=3 port=8079 backends=198.18.77.1,198.18.77.2,198.18.77.3 seq=even"
out=$(probe tcp 10.96.77.12 80 --count 45)
expect "B20 shr: 45 connections reach its 3 backends, getpeername() shows its ClusterIP" \
	"$(names_in "$out") $(peers_in "$out")" "f-1 f-2 f-3 10.96.77.12:80"

# === c. endpoints change ====================================================

mkdir "$WORK/hold"
bg_client "$PYTHON" "$PROBE" hold 10.96.77.9 80 --dir "$WORK/hold" --wait 60
HOLD=${PIDS[-1]}
wait_held "$WORK/hold" "$HOLD"
X=$(cat "$WORK/hold/first" 2>/dev/null)
case $X in
f-1) keep="2 3" ;;
f-2) keep="1 3" ;;
f-3) keep="1 2" ;;
*) keep= ;;
esac
if [ -z "$keep" ]; then
	not_ok "chg: a held TCP connection through the ClusterIP" "answer '$X'"
else
	note "held connection on $X; removing it"
	# shellcheck disable=SC2086
	chg_yaml $keep | change "chg: 3 -> 2 endpoints ($X removed)" "$SRC/chg.yaml"
	want=$(for n in $keep; do echo "198.18.77.$n"; done | paste -sd,)
	expect "chg 3 -> 2: the entry holds the 2 left" "$(fast entry 10.96.77.9 80 TCP)" "count=2 port=8087 backends=$want seq=even"
	t=$(conn_tally 100 10.96.77.9 80)
	note "chg x100 after $X left: $t"
	expect "B12 chg: once published, none of 100 new connections reaches the removed $X" \
		"$(names_of "$t")" "$(for n in $keep; do echo "f-$n"; done | paste -sd' ')"
	touch "$WORK/hold/go"
	wait_file "$WORK/hold/second" 10
	expect "B12 chg: the connection held to the removed backend still exchanges data" \
		"$(cat "$WORK/hold/second" 2>/dev/null)" "$X"
	wait_until 10 eval "! kill -0 $HOLD"
	lport=$(cat "$WORK/hold/lport")
	out=$(probe tcp --bind-port "$lport" 10.96.77.9 80 --count 1)
	expect_match "B12 chg: a new connection from the held one's source port reaches a live backend (kubernetes#81775)" \
		"$(field reply "$out")" "^f-[${keep// /}]\$"
	# One of the two replaced by f-4.
	first=${keep%% *}
	chg_yaml "$first" 4 | change "chg: one endpoint replaced" "$SRC/chg.yaml"
	expect "chg replaced: the entry holds f-$first and f-4" "$(fast entry 10.96.77.9 80 TCP)" \
		"count=2 port=8087 backends=198.18.77.$first,198.18.77.4 seq=even"
	t=$(conn_tally 60 10.96.77.9 80)
	note "chg x60 after the replacement: $t"
	expect "B12 chg: 60 new connections reach f-$first and f-4 only" "$(names_of "$t")" "f-$first f-4"
fi
chg_yaml | change "chg: no endpoint left" "$SRC/chg.yaml"
expect "B14 chg without endpoints: its entry is gone" "$(fast entry 10.96.77.9 80 TCP)" absent
expect_match "B14 chg without endpoints: a connect is refused at once" \
	"$(probe tcp 10.96.77.9 80)" '^error=ECONNREFUSED stage=connect'

# === d. Service deleted ======================================================

g=$(generation)
rm -f "$SRC/del.yaml"
wait_generation $((g + 1)) 10 || not_ok "del: a new generation is published" "still $(generation)"
expect "B5 del deleted: its entry is gone" "$(fast entry 10.96.77.10 80 TCP)" absent
out=$(probe tcp 10.96.77.10 80 --count 3)
expect "B5 del deleted: 3 connects to its ClusterIP reach nothing (not translated: no route)" \
	"$(grep -c '^error=ENETUNREACH stage=connect' <<<"$out") $(grep -c '^reply=' <<<"$out")" "3 0"

# === e. entries written out of band ===========================================

WEB3="count=3 port=8080 backends=198.18.77.1,198.18.77.2,198.18.77.3 seq=even"
DNS3="count=3 port=53 backends=198.18.77.1,198.18.77.2,198.18.77.3 seq=even"

# control NAME TALLY ADDR PORT PROTO WANT: ok when TALLY has the decoy (a
# wrong entry with an even seq was followed: the datapath reads the table,
# before ferry_services4), or when the entry, WANT again, was put back by
# a resync before the connections were made (ferryd running).
control() {
	if [[ $2 == *decoy=* ]]; then
		ok "$1"
	elif [ "$(fast entry "$3" "$4" "$5")" = "$6" ]; then
		ok "$1 (moot: the resync had put the entry back first)"
	else
		not_ok "$1" "got '$2', the entry: $(fast entry "$3" "$4" "$5")"
	fi
}

# While ferryd runs. B34: what someone else changed or removed in the
# datapath is put back (heal.sh: every other map's altered and deleted
# entries, within a few --resync-period passes). web's entry is altered
# (even, naming the decoy), dns's deleted (zeroed).
save_dump "$WORK/before-e.json"
fast_write 10.96.77.1 80 TCP wrong-even "$DECOY" || not_ok "e: bpftool map update" "see $LOGDIR/bpftool.log"
fast_write 10.96.77.2 53 UDP zero
healed() { [ "$(fast entry 10.96.77.1 80 TCP) / $(fast entry 10.96.77.2 53 UDP)" = "$WEB3 / $DNS3" ]; }
if wait_until 5 healed; then
	t=$(conn_tally 30 10.96.77.1 80)
	expect "B34 ferry_fast4's entries altered (web: even, naming the decoy) and deleted (dns) out of band are put back by the resync; web's 30 connections reach its backends" \
		"$(names_of "$t")" "f-1 f-2 f-3"
else
	not_ok "B34 ferry_fast4's entries altered (web: even, naming the decoy) and deleted (dns) out of band are put back by the resync" \
		"after 5 s (--resync-period 1): web $(fast entry 10.96.77.1 80 TCP), dns $(fast entry 10.96.77.2 53 UDP); web's 20 connections: $(conn_tally 20 10.96.77.1 80)"
	fast_restore 10.96.77.1 80 TCP "$WORK/before-e.json"
	fast_restore 10.96.77.2 53 UDP "$WORK/before-e.json"
fi
expect "B34 the table holds exactly what it held before" "$(fast content)" \
	"$("$PYTHON" "$WORK/fast.py" content "$WORK/before-e.json")"

# While ferryd is down (stopped by pid; the pinned programs go on reading
# the pinned table, nothing writes it): odd entries, which a resync would
# otherwise put back under the connections.
save_dump "$WORK/before-f.json"
before=$("$PYTHON" "$WORK/fast.py" content "$WORK/before-f.json")
gen=$(generation)
ferryd_stop
[ -e "$FAST" ] || not_ok "e: ferry_fast4 stays pinned while ferryd is down" "$FAST missing"
fast_write 10.96.77.1 80 TCP odd
expect "web's entry made odd out of band (same content, seq + 1)" \
	"$(fast entry 10.96.77.1 80 TCP | sed 's/.*seq=//')" odd
t=$(conn_tally 60 10.96.77.1 80)
expect "web, entry odd: 60 connections reach all 3 backends (ferry_services4 answers)" "$(names_of "$t")" "f-1 f-2 f-3"
fast_write 10.96.77.1 80 TCP wrong-odd "$DECOY"
t=$(conn_tally 60 10.96.77.1 80)
note "web, entry odd naming the decoy, x60: $t"
expect "web, entry odd naming the decoy: 60 connections reach the 3 backends, never the decoy" "$(names_of "$t")" "f-1 f-2 f-3"
fast_write 10.96.77.2 53 UDP wrong-odd "$DECOY"
out=$(probe udp 10.96.77.2 53 --connect --count 45)
expect "dns, entry odd naming the decoy: 45 connected UDP sockets reach the 3 backends only" \
	"$(names_in "$out") $(grep -c '^error=' <<<"$out")" "f-1 f-2 f-3 0"
# The control: the same wrong entry, even, is taken.
fast_write 10.96.77.1 80 TCP wrong-even "$DECOY"
t=$(conn_tally 20 10.96.77.1 80)
expect "control: the same wrong entry with an even seq is followed (20 connections reach the decoy)" "$t" "decoy=20"

# === f. restart over the pins =================================================

# Still down: web's entry names the decoy with an even seq (a wrong answer
# the datapath takes), dns's is zeroed, np's ClusterIP entry is left odd
# naming the decoy (a ferryd stopped between its writes) and a stray entry
# sends 10.96.77.99:80, of no Service, to the decoy.
fast_write 10.96.77.2 53 UDP zero
fast_write 10.96.77.7 80 TCP wrong-odd "$DECOY"
FAST_CMD=stray fast_write 10.96.77.99 80 TCP "$DECOY" 8080
expect "f: while ferryd is down: web's entry names the decoy (even), dns's is zeroed, np's is odd, a stray one is there" \
	"$(fast entry 10.96.77.1 80 TCP | sed 's/count=3 port=8080 //') / $(fast entry 10.96.77.2 53 UDP) / $(fast entry 10.96.77.7 80 TCP | sed 's/.*seq=//') / $(fast entry 10.96.77.99 80 TCP)" \
	"backends=$DECOY,$DECOY,$DECOY seq=even / absent / odd / count=1 port=8080 backends=$DECOY seq=even"
expect_match "control: while ferryd is down the stray entry is followed (10.96.77.99:80 reaches the decoy)" \
	"$(probe tcp 10.96.77.99 80)" '^reply=decoy '
ferryd_spawn "$SRC" "${FERRYD_ARGS[@]}"
if wait_generation $((gen + 1)) 120; then
	ok "f: a new ferryd over the pins publishes generation $((gen + 1))"
else
	not_ok "f: a new ferryd over the pins publishes a generation after $gen" "generation $(generation)"
fi
after=$(fast content)
if [ "$after" = "$before" ]; then
	ok "B33 f: after the restart the table holds again what it held (content, seq aside): web mended, dns back, np even, the stray gone"
else
	not_ok "B33 f: after the restart the table holds again what it held" \
		"$(diff <(echo "$before") <(echo "$after") | grep '^[<>]' | tr '\n' ';')"
fi
expect "f: every entry within its probes, every seq even" "$(fast placed)" yes
t=$(conn_tally 60 10.96.77.1 80)
expect "B33 f: web: 60 connections reach its 3 backends, not the decoy" "$(names_of "$t")" "f-1 f-2 f-3"
out=$(probe udp 10.96.77.2 53 --connect --count 45)
expect "B33 f: dns: 45 connected UDP sockets reach its 3 backends" "$(names_in "$out") $(grep -c '^error=' <<<"$out")" "f-1 f-2 f-3 0"
t=$(conn_tally 30 10.96.77.7 80)
expect "B33 f: np's ClusterIP: 30 connections reach its 2 backends" "$(names_of "$t")" "f-1 f-2"
expect_match "f: 10.96.77.99:80, of no Service, is no longer translated (ENETUNREACH)" \
	"$(probe tcp 10.96.77.99 80)" '^error=ENETUNREACH stage=connect'

# Other map sizes: a migration to new maps, a table of 1024 entries.
gen=$(generation)
ferryd_stop
FERRYD_ARGS=(--max-services 512 --resync-period 1)
ferryd_spawn "$SRC" "${FERRYD_ARGS[@]}"
wait_generation $((gen + 1)) 120 || not_ok "f: a ferryd with --max-services 512 publishes" "generation $(generation)"
expect "f: after a migration to --max-services 512: a table of 1024 entries, the same content, each within its probes" \
	"$(fast size) / $(fast content | md5sum) / $(fast placed)" "1024 / $(md5sum <<<"$before") / yes"
save_dump "$WORK/before-m.json"
fast_write 10.96.77.1 80 TCP wrong-even "$DECOY"
t=$(conn_tally 10 10.96.77.1 80)
control "control: after the migration the programs read the new table (its size in their mask): a wrong even entry is followed" \
	"$t" 10.96.77.1 80 TCP "$WEB3"
web3() { [ "$(fast entry 10.96.77.1 80 TCP)" = "$WEB3" ]; }
wait_until 5 web3 || fast_restore 10.96.77.1 80 TCP "$WORK/before-m.json"
t=$(conn_tally 60 10.96.77.1 80)
expect "web's entry put back (B34): 60 connections reach its 3 backends" "$(names_of "$t")" "f-1 f-2 f-3"

# === g. churn ===================================================================

# The client: build/tests/churn, a connect, getpeername and HTTP answer in a
# loop bounded in count (20000) and time (40 s), each line "GEN_BEFORE
# GEN_AFTER NAME". The driver: 40 flips of churn's endpoints between {f-1}
# and {f-2, f-3, f-4}, one generation each (logged "GEN SET").
CHURN=$BUILD/tests/churn
if [ ! -x "$CHURN" ]; then
	not_ok "g: churn" "build/tests/churn missing (make build/tests/churn)"
	finish
fi
expect "g: churn answers from its first set ({f-1})" "$(field reply "$(probe tcp 10.96.77.8 80)")" f-1
echo "$(generation) f-1" >"$WORK/flips.log"
bg_client "$CHURN" -m "$BPFFS/ferry_state" -s "$WORK/churn-stop" -n 20000 -t 40 10.96.77.8 80 \
	>"$WORK/churn.log" 2>"$WORK/churn.err"
CLIENT=${PIDS[-1]}
wait_file "$WORK/churn.log" 10
flips=0
for ((i = 0; i < 40; i++)); do
	if ((i % 2 == 0)); then set=(2 3 4); else set=(1); fi
	churn_yaml "${set[@]}" | update_source "$SRC/churn.yaml" || break
	echo "$(generation) $(printf 'f-%s,' "${set[@]}" | sed 's/,$//')" >>"$WORK/flips.log"
	flips=$((flips + 1))
	# A few connections under each set before the next flip.
	sleep 0.02
done
touch "$WORK/churn-stop"
wait_until 10 eval "! kill -0 $CLIENT"
cp "$WORK/flips.log" "$WORK/churn.log" "$LOGDIR/" 2>/dev/null
expect "g: 40 flips, each published as a generation" "$flips" 40
# Each connection against the sets of the generations of its window
# [before, after + 1] (a generation holds the set of the last flip at or
# before it).
verdict=$("$PYTHON" - "$WORK/flips.log" "$WORK/churn.log" <<'PY'
import bisect, sys
flips = [(int(g), set(s.split(","))) for g, s in (l.split() for l in open(sys.argv[1]))]
gens = [g for g, _ in flips]
def set_at(g):
    i = bisect.bisect_right(gens, g) - 1
    return flips[max(i, 0)][1]
n = ok = 0
bad = []
for line in open(sys.argv[2]):
    parts = line.split()
    if len(parts) != 3:
        continue
    b, a, name = int(parts[0]), int(parts[1]), parts[2]
    n += 1
    allowed = set()
    for g in range(b, a + 2):
        allowed |= set_at(g)
    if name in allowed:
        ok += 1
    elif len(bad) < 5:
        bad.append(line.strip())
print("%d %d %s" % (n, n - ok, " | ".join(bad)))
PY
)
read -r conns wrong rest <<<"$verdict"
note "g: $conns connections over $flips flips; $wrong outside their window's sets ${rest:+($rest)}"
if [ "${conns:-0}" -ge 200 ]; then
	ok "g: the client connected throughout the churn ($conns connections)"
else
	not_ok "g: the client connected throughout the churn" "$conns connections; $(cat "$WORK/churn.err")"
fi
expect "B12 B14 g: every connection succeeded and reached a backend of a set published within its window" \
	"${wrong:-?}" 0
expect "g: no connection failed, reached the decoy, or saw another peer than the ClusterIP (B20)" \
	"$(grep -cE ' (error:|badpeer:|decoy)' "$WORK/churn.log")" 0
expect "g: the entry ends on the last set ({f-1}), even" "$(fast entry 10.96.77.8 80 TCP)" \
	"count=1 port=8086 backends=198.18.77.1 seq=even"

finish
