#!/usr/bin/env bash
# Scale: 100,000 Services x 10 endpoints from one file (scripts/gen-cluster.py,
# ~140 MB of JSON). ferryd loads it within a bound, programs every service
# and backend without a map-full error, and real connections to a few of the
# generated ClusterIPs reach that service's pods. Then one endpoint of one
# service is replaced, then removed: each time from the rename to ferryd's
# publish is measured; a change touches only that service's entries (B35)
# and new connections follow it (B12). The replacement happens at exactly
# --max-backends, where make-before-break needs one spare backend entry.
# Printed: load time, one-change time, ferryd's RSS and peak RSS, each map's
# entries and memory.
# shellcheck source=tests/lib.sh
source "$(dirname "$0")/../lib.sh"

N=${SCALE_SERVICES:-100000}
M=10
LOAD_SECONDS=90                    # bounds: the group stays under 3 minutes
CHANGE_SECONDS=20
# Services whose pods get a podserver. Not svc-0: its first endpoint,
# 198.18.0.1, is the test node's own bridge address.
PROBES=(1 $((N / 2)) $((N - 1)))
CHANGED=${PROBES[0]}               # the service whose endpoint changes
NEW_IP=198.19.255.254              # its new endpoint (replaces endpoint 9)

need_root
avail_kb=$(awk '$1 == "MemAvailable:" {print $2}' /proc/meminfo)
if [ "${avail_kb:-0}" -lt $((4 * 1024 * 1024)) ]; then
	note "skip: $((avail_kb / 1024)) MB of memory available, scale needs 4 GB"
	finish
fi

# The addresses gen-cluster.py gives, and the file edit, in one helper.
{
	printf '%s\n' "$FERRY_STATE_PY"
	cat <<'PY'
import ipaddress, json, runpy, time

GEN = runpy.run_path(os.path.join(os.environ["REPO"], "scripts/gen-cluster.py"))


def vip(i):
    return str(GEN["SVC_NET"][i + 1])


def pods(i, m):
    return [e["addresses"][0] for e in GEN["slice_"](i, m, 0)["endpoints"]]


def gen():
    """gen-cluster.py N M itself, byte for byte."""
    sys.argv = ["gen-cluster.py"] + sys.argv[2:]
    runpy.run_path(os.path.join(os.environ["REPO"], "scripts/gen-cluster.py"),
                   run_name="__main__")


def wait_first(state_path, seconds, start_ns, pid):
    """Wait (bounded) for the pin and generation >= 1; print the load time."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except OSError:
            print("ferryd exited")
            return 1
        if os.path.exists(state_path):
            st = StateMap(state_path)
            while time.monotonic() < deadline:
                if st.generation() >= 1:
                    print("%.2f" % ((st.applied_ns() - start_ns) / 1e9))
                    return 0
                time.sleep(0.05)
        time.sleep(0.05)
    print("timeout")
    return 1


def slice_with(i, m, how, new_ip):
    """Service i's slice as gen-cluster.py writes it ('orig'), with endpoint
    m-1 replaced by new_ip ('replaced'), or without endpoint m-1 ('dropped')."""
    sl = GEN["slice_"](i, m, 0)
    if how == "replaced":
        sl["endpoints"][m - 1]["addresses"] = [new_ip]
    elif how == "dropped":
        del sl["endpoints"][m - 1]
    return json.dumps(sl).encode()


def change(state_path, path, i, m, old, new, new_ip):
    """Rewrite service i's slice from old to new (slice_with) by rename; wait
    (bounded) for ferryd's next publish of its state. Prints the ms from the
    rename to that publish, the generation before and after, and the
    map-full errors before and after."""
    before, after = slice_with(i, m, old, new_ip), slice_with(i, m, new, new_ip)
    with open(path, "rb") as f:
        data = f.read()
    if data.count(before) != 1:
        print("slice-not-found")
        return 1
    with open(path + ".tmp", "wb") as f:
        f.write(data.replace(before, after))
    del data
    st = StateMap(state_path)
    g0, full0, t_pub = st.generation(), st.map_full_errors(), st.applied_ns()
    t0 = time.monotonic()
    os.rename(path + ".tmp", path)
    # ferryd publishes its state after every reload, applied or not.
    while st.applied_ns() == t_pub:
        if time.monotonic() - t0 > float(os.environ["CHANGE_SECONDS"]):
            print("timeout")
            return 1
        time.sleep(0.002)
    ms = (time.monotonic() - t0) * 1000
    print("%.0f %d %d %d %d" % (ms, g0, st.generation(), full0, st.map_full_errors()))
    return 0


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "addrs":
        print(" ".join(pods(int(sys.argv[2]), int(sys.argv[3]))))
    elif cmd == "vip":
        print(vip(int(sys.argv[2])))
    elif cmd == "gen":
        gen()
    elif cmd == "wait":
        sys.exit(wait_first(sys.argv[2], float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])))
    elif cmd == "change":
        sys.exit(change(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]),
                        sys.argv[6], sys.argv[7], sys.argv[8]))
PY
} >"$WORK/scale.py"
S() { REPO=$REPO CHANGE_SECONDS=$CHANGE_SECONDS "$PYTHON" "$WORK/scale.py" "$@"; }

topology_up
declare -A PROBE_PODS=()
for i in "${PROBES[@]}"; do
	PROBE_PODS[$i]=$(S addrs "$i" $M)
	for ip in ${PROBE_PODS[$i]}; do
		[ "$ip" != 198.18.0.1 ] || { not_ok "scale setup" "svc-$i has the bridge's address"; finish; }
		[ -n "${POD_NS[p-$ip]:-}" ] || pod "p-$ip" "$ip" "" --tcp 8080
	done
done
pod "p-$NEW_IP" "$NEW_IP" "" --tcp 8080
note "podservers for services ${PROBES[*]}: ${#PODS[@]} pods"

start=$SECONDS
S gen "$N" $M >"$WORK/big.json"
note "gen-cluster.py $N $M: $(($(stat -c %s "$WORK/big.json") / 1000000)) MB in $((SECONDS - start)) s"

start_ns=$(date +%s%N)
ferryd_spawn "$WORK/big.json" --log-level info \
	--max-services "$N" --max-backends $((N * M)) || finish
load=$(S wait "$BPFFS/ferry_state" $LOAD_SECONDS "$start_ns" "$FERRYD_PID")
if [[ $load =~ ^[0-9.]+$ ]]; then
	ok "scale: ferryd publishes its first generation of $N services x $M endpoints within $LOAD_SECONDS s"
	note "load time: $load s from ferryd's start to the published generation;" \
		"$(grep -o 'generation 1: [^"]*' "$FERRYD_LOG" | tail -n 1)"
else
	not_ok "scale: ferryd publishes its first generation within $LOAD_SECONDS s" \
		"$load; log: $(tail -n 2 "$FERRYD_LOG" | tr '\n' ' ')"
	finish
fi

# One status, everything from it.
"$FERRYCTL" --bpffs "$BPFFS" status -o json --maps >"$WORK/status.json"
sget() { "$PYTHON" -c 'import json, sys; j = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' \
	"$WORK/status.json" "$1"; }
expect "scale: ferryctl status: $N services, $((N * M)) backends programmed" \
	"$(sget '"%d %d" % (j["agent"]["services"], j["agent"]["backends"])')" "$N $((N * M))"
expect "scale: no map-full error, no parse error, nothing skipped" \
	"$(sget '"%d %d %d" % (j["agent"]["map_full_errors"], j["agent"]["parse_errors"], j["agent"]["objects_skipped"])')" \
	"0 0 0"
# One reverse entry per distinct TCP backend: gen-cluster.py's pod
# addresses wrap around 198.18.0.0/15 (131,070 of them).
distinct=$((N * M < 131070 ? N * M : 131070))
# Slots of a set of k IPv4 backends: none while it rides inline (k <= 16).
slots_of() { echo $(($1 > 16 ? $1 : 0)); }
expect "scale: the maps hold it all (2 x $N services entries, $((N * $(slots_of "$M"))) slots, $((N * M)) backends, $distinct reverse entries, $N names)" \
	"$(sget '" ".join("%s=%s" % (m["name"], m["entries"]) for m in j["maps"] if "entries" in m and m["name"] != "ferry_fast4")')" \
	"ferry_services4=$((2 * N)) ferry_services6=0 ferry_slots=$((N * $(slots_of "$M"))) ferry_backends=$((N * M)) ferry_revnat=$distinct ferry_affinity=0 ferry_node_addrs=0 ferry_ct=0 ferry_svc_names=$N"
# ferry_fast4 holds the ClusterIP ports of up to 12 backends that own
# them all in ferry_revnat: the first 131,070 / M services (the pod
# addresses wrap after them), but for those whose home entries were full.
fast_want=$((M > 12 ? 0 : (N * M < 131070 ? N : 131070 / M)))
read -r fast_in fast_out < <(sget '"%d %d" % ([m["entries"] for m in j["maps"] if m["name"] == "ferry_fast4"][0], j["agent"]["fast_left_out"])')
note "scale: ferry_fast4: $fast_in entries, $fast_out left out for want of a free entry near their home"
expect "scale: ferry_fast4 holds or counts as left out each of the $fast_want ClusterIP ports that own their backends" \
	"$((fast_in + fast_out))" "$fast_want"
rss=$(sget 'j["agent"].get("ferryd_rss_kb", -1)')
peak=$(sget 'j["agent"].get("ferryd_peak_rss_kb", -1)')
if [ "${rss:--1}" -lt 0 ] && [ -n "$FERRYD_PID" ]; then
	rss=$(awk '$1 == "VmRSS:" {print $2}' "/proc/$FERRYD_PID/status")
	peak=$(awk '$1 == "VmHWM:" {print $2}' "/proc/$FERRYD_PID/status")
fi
note "ferryd RSS $((rss / 1024)) MB, peak $((peak / 1024)) MB (ferryctl status agent.ferryd_rss_kb=$rss, ferryd_peak_rss_kb=$peak)"
sget '"\n".join("# map %-16s entries %9s / %-9d memory %6.1f MB" % (m["name"], m.get("entries", "-"), m["max_entries"], m["memory_bytes"] / 1048576) for m in j["maps"])'
note "maps total: $(sget '"%.1f MB" % (sum(m["memory_bytes"] for m in j["maps"]) / 1048576)')"

# --- Real connections to some of the generated ClusterIPs.
# want_names ADDR...: the pod names podserver answers with, sorted.
want_names() { for ip in "$@"; do echo "p-$ip"; done | sort | tr '\n' ' ' | sed 's/ $//'; }
for i in "${PROBES[@]}"; do
	# shellcheck disable=SC2086
	expect "scale: svc-$i ($(S vip "$i"):80) answers from its $M pods, each of them (x200)" \
		"$(names_of "$(conn_tally 200 "$(S vip "$i")" 80)")" "$(want_names ${PROBE_PODS[$i]})"
done

# --- One change at a time, each timed from the rename to ferryd's publish.
# change_to OLD NEW: rewrite svc-$CHANGED's slice; sets MS G0 G1 F0 F1.
change_to() {
	local out
	out=$(S change "$BPFFS/ferry_state" "$WORK/big.json" "$CHANGED" $M "$1" "$2" "$NEW_IP")
	read -r MS G0 G1 F0 F1 <<<"$out"
	[[ $MS =~ ^[0-9]+$ ]] || { MS=; note "change $1 -> $2: $out"; return 1; }
}
# writes_of GEN: the map writes ferryd logged for generation GEN.
writes_of() {
	grep -o "generation $1: [0-9]* service ports desired, [0-9]* map writes" "$FERRYD_LOG" |
		tail -n 1 | sed 's/.* \([0-9]*\) map writes/\1/'
}
# shellcheck disable=SC2086 # a list of addresses
set -- ${PROBE_PODS[$CHANGED]}
old_names=$(want_names "$@")
vip_changed=$(S vip "$CHANGED")

# 1. Endpoint 9 of svc-$CHANGED replaced by another pod: the service count
# stays at $((N * M)) = --max-backends; the new backend is written before the
# old one goes (make-before-break), which needs one spare entry.
if change_to orig replaced; then
	note "one-change time (endpoint replaced): $MS ms from the rename to ferryd's publish" \
		"(generation $G0 -> $G1, map_full_errors $F0 -> $F1)"
	if [ "$G1" -gt "$G0" ] && [ "$F1" = "$F0" ]; then
		ok "scale: at --max-backends, replacing one endpoint is applied (generation $G1, $MS ms)"
		w=$(writes_of "$G1")
		# A new backend, its new slots, the service entry; the old slots
		# and the departed backend (a set of 16 or fewer has no slots).
		expect "B35 scale: the replacement touches only its service's entries (map writes)" \
			"${w:-none logged}" $((2 * $(slots_of "$M") + 3))
		expect "B12 scale: svc-$CHANGED answers from its new set, never the replaced pod (x200)" \
			"$(names_of "$(conn_tally 200 "$vip_changed" 80)")" \
			"$(want_names "${@:1:M-1}" "$NEW_IP")"
	else
		not_ok "scale: at --max-backends, replacing one endpoint is applied" \
			"not applied (generation $G0 -> $G1, map_full_errors $F0 -> $F1): ferry_backends is sized exactly --max-backends and has no room for the new backend before the old one goes; log: $(grep -F "svc-$CHANGED:" "$FERRYD_LOG" | tail -n 1)"
		expect "scale: the refused change leaves svc-$CHANGED serving its previous set (x200)" \
			"$(names_of "$(conn_tally 200 "$vip_changed" 80)")" "$old_names"
	fi
else
	not_ok "scale: ferryd publishes after an endpoint is replaced" "no publish within $CHANGE_SECONDS s"
fi

# 2. Endpoint 9 removed (from whatever the file holds now): no new entry is
# needed, so this applies at capacity.
if change_to replaced dropped; then
	note "one-change time (endpoint removed): $MS ms from the rename to ferryd's publish" \
		"(generation $G0 -> $G1, map_full_errors $F0 -> $F1);" \
		"$(grep -o "generation $G1: [^\"]*" "$FERRYD_LOG" | tail -n 1)"
	if [ "$G1" -gt "$G0" ] && [ "$F1" = "$F0" ]; then
		ok "scale: removing one endpoint is applied (generation $G1, $MS ms)"
	else
		not_ok "scale: removing one endpoint is applied" \
			"generation $G0 -> $G1, map_full_errors $F0 -> $F1"
	fi
	w=$(writes_of "$G1")
	# The M-1 backends' new slots, the service entry; the M old slots and
	# the departed backend (after a refused replacement, the same from the
	# original set).
	expect "B35 scale: the removal touches only its service's entries (map writes)" \
		"${w:-none logged}" $(($(slots_of $((M - 1))) + $(slots_of "$M") + 2))
	expect "B12 scale: svc-$CHANGED answers from its $((M - 1)) remaining pods only (x200)" \
		"$(names_of "$(conn_tally 200 "$vip_changed" 80)")" "$(want_names "${@:1:M-1}")"
else
	not_ok "scale: ferryd publishes after an endpoint is removed" "no publish within $CHANGE_SECONDS s"
fi
# shellcheck disable=SC2086 # a list of addresses
expect "scale: the other services are untouched: svc-${PROBES[1]} still answers from its pods" \
	"$(names_of "$(conn_tally 200 "$(S vip "${PROBES[1]}")" 80)")" "$(want_names ${PROBE_PODS[${PROBES[1]}]})"
expect "scale: still $N services; backends $((N * M)) - 1" \
	"$(status_get '"%d %d" % (j["agent"]["services"], j["agent"]["backends"])')" "$N $((N * M - 1))"

finish
