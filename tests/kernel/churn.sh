#!/usr/bin/env bash
# Make-before-break, proven under churn. A client connects in a tight loop
# (build/tests/churn) while a driver rewrites the backend set of its Service
# underneath for over a thousand generations: grow, shrink, replace all,
# empty and refill. Each connection is logged with the published generation
# read just before connect() and just after the answer; each write of the
# driver with the generation that published it. The checker then proves:
#   - no connection reached a backend that no generation of its window
#     [before, after + 1] holds: once the generation that removed a backend
#     is published, no new connection goes there (B12);
#   - no connection failed while a ready backend existed; ECONNREFUSED only
#     where a generation of the window has no endpoint (B14), and at once;
#   - getpeername() shows the ClusterIP on every connection (B20).
# ferryd runs with small capacities so that backend IDs are recycled many
# times over during the run.
# shellcheck source=tests/lib.sh
source "$(dirname "$0")/../lib.sh"

CHURN=$BUILD/tests/churn
VIP=10.96.60.10
STEPS=${CHURN_STEPS:-1200}           # writes of the source, at most
DRIVER_SECONDS=${CHURN_SECONDS:-55}  # bound on the driver's run
MIN_GENERATIONS=1000
MIN_CONNECTS=1500
SEED=${CHURN_SEED:-$RANDOM}

if [ ! -x "$CHURN" ]; then
	not_ok "churn setup" "build/tests/churn missing (make build/tests/churn)"
	finish
fi

topology_up
for i in 1 2 3 4 5 6 7 8; do
	pod "c-$i" "198.18.60.$i" "" --tcp 8080
done

# The driver and the checker, in one script: churn.py render|drive|check.
{
printf '%s\n' "$FERRY_STATE_PY"
cat <<'PY'
import os, random, sys, time

PODS = [f"c-{i}" for i in range(1, 9)]
ADDR = {p: f"198.18.60.{i}" for i, p in enumerate(PODS, 1)}


def render(pods, style):
    """The Service and two EndpointSlices (odd pods in one, even pods in the
    other: all slices of a Service are merged, B7). style says how an
    empty set is written: 'none' (no endpoints), 'unready' (every pod
    present but ready: false, B10), 'noslice' (no EndpointSlice at all)."""
    out = ["apiVersion: v1", "kind: Service",
           "metadata: {name: churn, namespace: churn}",
           "spec:", "  clusterIP: 10.96.60.10",
           "  ports: [{name: http, port: 80, protocol: TCP, targetPort: 8080}]"]
    if not pods and style == "noslice":
        return "\n".join(out) + "\n"
    for k, half in enumerate((PODS[0::2], PODS[1::2]), 1):
        out += ["---", "apiVersion: discovery.k8s.io/v1", "kind: EndpointSlice",
                f"metadata: {{name: churn-{k}, namespace: churn, "
                "labels: {kubernetes.io/service-name: churn}}",
                "addressType: IPv4",
                "ports: [{name: http, port: 8080, protocol: TCP}]"]
        eps = [p for p in half if p in pods]
        unready = [p for p in half if not pods and style == "unready"]
        if not eps and not unready:
            out.append("endpoints: []")
            continue
        out.append("endpoints:")
        out += [f"- {{addresses: [{ADDR[p]}], conditions: {{ready: true}}, nodeName: node-a}}"
                for p in eps]
        out += [f"- {{addresses: [{ADDR[p]}], conditions: {{ready: false}}, nodeName: node-a}}"
                for p in unready]
    return "\n".join(out) + "\n"


def write_atomic(path, text):
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.rename(path + ".tmp", path)


def next_set(kind, cur, rng):
    """One step of a scenario; every step changes the set."""
    everyone = set(PODS)
    if kind == "grow" and len(cur) == len(PODS):
        kind = "shrink"
    if kind == "shrink" and len(cur) <= 1:
        kind = "grow"
    if kind == "replace" and len(cur) == len(PODS):
        kind = "shrink"
    if kind == "empty" and not cur:
        kind = "refill"
    if kind == "refill" and cur:
        kind = "replace"
    if kind == "grow":
        return kind, cur | {rng.choice(sorted(everyone - cur))}
    if kind == "shrink":
        return kind, cur - {rng.choice(sorted(cur))}
    if kind == "replace":
        rest = sorted(everyone - cur)
        return kind, set(rng.sample(rest, rng.randint(1, len(rest))))
    if kind == "empty":
        return kind, set()
    return kind, set(rng.sample(PODS, rng.randint(1, 4)))


CYCLE = ["grow", "grow", "shrink", "replace", "grow", "shrink", "shrink", "replace",
         "empty", "refill", "grow", "replace", "grow", "grow", "grow", "shrink"]
STYLES = ["none", "unready", "noslice"]


def fmt(pods):
    return ",".join(sorted(pods)) or "-"


def drive(mapfile, src, log, steps, seconds, seed, init):
    """Rewrite src step by step; after each write wait (bounded) until the
    published generation rises and log 'GEN KIND SET'."""
    st = StateMap(mapfile)
    rng = random.Random(seed)
    cur = set(init.split(",")) if init != "-" else set()
    gen = st.generation()
    deadline = time.monotonic() + seconds
    with open(log, "w", buffering=1) as out:
        out.write(f"{gen} init {fmt(cur)}\n")
        for i in range(steps):
            if time.monotonic() > deadline:
                print(f"# driver: time bound ({seconds} s) reached after {i} steps")
                break
            kind, cur = next_set(CYCLE[i % len(CYCLE)], cur, rng)
            style = STYLES[(i // len(CYCLE)) % len(STYLES)]
            write_atomic(src, render(cur, style))
            step_deadline = time.monotonic() + 5
            while True:
                g = st.generation()
                if g > gen:
                    break
                if time.monotonic() > step_deadline:
                    print(f"# driver: step {i} ({kind} -> {fmt(cur)}): "
                          f"generation stuck at {gen} for 5 s")
                    return 1
                time.sleep(0.0005)
            out.write(f"{g} {kind if cur else 'empty-' + style} {fmt(cur)}\n")
            gen = g
    return 0


def check(driver_log, client_log):
    sets, kinds = {}, {}
    for line in open(driver_log):
        g, kind, pods = line.split()
        sets[int(g)] = set() if pods == "-" else set(pods.split(","))
        kinds[int(g)] = kind
    first, last = min(sets), max(sets)
    r = dict(connects=0, answered=0, refused_expected=0, violations=0,
             unexpected_failures=0, bad_peer=0, unknown_generations=0,
             generations=len(sets), generation_gaps=0, generations_with_connects=0,
             answered_checkable=0, first_generation=first, last_generation=last,
             empty_generations=sum(1 for s in sets.values() if not s))
    r["generation_gaps"] = (last - first + 1) - len(sets)
    failures, examples, seen = {}, [], set()
    for line in open(client_log):
        parts = line.split()
        if len(parts) != 3:
            continue
        gb, ga, res = int(parts[0]), int(parts[1]), parts[2]
        r["connects"] += 1
        seen.add(gb)
        # The datapath holds generation gb or later when connect() starts,
        # and at most ga + 1 (switched, not yet published) when it returns.
        window = [g for g in range(gb, ga + 2) if g in sets]
        missing = [g for g in range(gb, min(ga, last) + 1) if g not in sets]
        if gb < first or missing:
            r["unknown_generations"] += 1
            continue
        allowed = set().union(*(sets[g] for g in window))
        any_empty = any(not sets[g] for g in window)
        if res.startswith("badpeer:"):
            r["bad_peer"] += 1
            res = res[len("badpeer:"):]
            if len(examples) < 10:
                examples.append(f"getpeername not the ClusterIP: {line.strip()}")
        if res.startswith("error:"):
            err = res[len("error:"):]
            if err == "ECONNREFUSED@connect" and any_empty:
                r["refused_expected"] += 1
                continue
            r["unexpected_failures"] += 1
            failures[err] = failures.get(err, 0) + 1
            if len(examples) < 10:
                examples.append(f"failure {err} in generations {gb}..{ga}: "
                                + "; ".join(f"{g} {kinds[g]} {fmt(sets[g])}" for g in window))
            continue
        r["answered"] += 1
        # Could this answer have been wrong? Only if some pod is outside
        # every set of its window.
        if len(allowed) < len(PODS):
            r["answered_checkable"] += 1
        if res not in allowed:
            r["violations"] += 1
            if len(examples) < 10:
                examples.append(f"{res} answered in generations {gb}..{ga}, held by none of: "
                                + "; ".join(f"{g} {kinds[g]} {fmt(sets[g])}" for g in window))
    r["generations_with_connects"] = len(seen & set(sets))
    for e in examples:
        print("# example:", e)
    print("# failures by kind:", " ".join(f"{k}={v}" for k, v in sorted(failures.items()))
          or "none")
    for k, v in r.items():
        print(k, v)
    return 0


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "render":
        sys.stdout.write(render(set(sys.argv[2].split(",")) - {"-"}, "none"))
    elif cmd == "drive":
        sys.exit(drive(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]),
                       float(sys.argv[6]), int(sys.argv[7]), sys.argv[8]))
    elif cmd == "check":
        sys.exit(check(sys.argv[2], sys.argv[3]))
PY
} >"$WORK/churn.py"

mkdir "$WORK/src"
SRC=$WORK/src/churn.yaml
INIT=c-1,c-2
"$PYTHON" "$WORK/churn.py" render "$INIT" | write_source "$SRC"
# 32 backends over all services: backend IDs come from a pool of 4 x 32,
# so every ID is freed and handed out again many times during the run.
ferryd_start "$SRC" --max-services 4 --max-backends 32 --max-backends-per-service 8 || finish

# Warm-up: the service answers before the churn starts.
expect_match "churn: the service answers from its first backend set" \
	"$(field reply "$(probe tcp "$VIP" 80)")" '^c-[12]$'

note "seed $SEED (CHURN_SEED=$SEED reproduces the driver's steps)"
bg_client "$CHURN" -m "$BPFFS/ferry_state" -s "$WORK/stop" -n 2000000 -t $((DRIVER_SECONDS + 25)) \
	"$VIP" 80 >"$WORK/client.log" 2>"$WORK/client.err"
CLIENT=${PIDS[-1]}
wait_file "$WORK/client.log" 10 || not_ok "churn: client starts" "$(cat "$WORK/client.err")"

start=$SECONDS
"$PYTHON" "$WORK/churn.py" drive "$BPFFS/ferry_state" "$SRC" "$WORK/driver.log" \
	"$STEPS" "$DRIVER_SECONDS" "$SEED" "$INIT"
drive_rc=$?
drive_secs=$((SECONDS - start))
touch "$WORK/stop"
if wait_until 10 bash -c "! kill -0 $CLIENT"; then
	wait "$CLIENT" 2>/dev/null
	client_rc=$?
else
	client_rc=timeout
fi
expect "churn: the driver publishes one generation per write, each within 5 s" "$drive_rc" 0
expect "churn: the client ends on the stop file and reads the generation throughout" \
	"$client_rc" 0
cp "$WORK/driver.log" "$LOGDIR/driver.log" 2>/dev/null
cp "$WORK/client.log" "$LOGDIR/client.log" 2>/dev/null

declare -A R=()
while read -r k v; do
	case $k in
	'#') echo "$k $v" ;;
	*) R[$k]=$v ;;
	esac
done < <("$PYTHON" "$WORK/churn.py" check "$WORK/driver.log" "$WORK/client.log")

note "driver: ${R[generations]:-?} generations (${R[first_generation]:-?}..${R[last_generation]:-?}," \
	"${R[empty_generations]:-?} empty) in ${drive_secs} s"
note "client: ${R[connects]:-?} connects, ${R[answered]:-?} answered" \
	"(${R[answered_checkable]:-?} where a removed backend was possible)," \
	"${R[refused_expected]:-?} refused in an empty generation," \
	"${R[unexpected_failures]:-?} unexpected failures, ${R[violations]:-?} to a removed backend," \
	"over ${R[generations_with_connects]:-?} generations"
note "datapath: $("$FERRYCTL" --bpffs "$BPFFS" status -o json | "$PYTHON" -c '
import json, sys
j = json.load(sys.stdin)
c, a = j["counters"], j["agent"]
print("backend_set_raced=%d refused_no_backend=%d translated_v4=%d map_full_errors=%d" % (
    c["backend_set_raced"], c["refused_no_backend"], c["translated_v4"], a["map_full_errors"]))')"

if [ "${R[generations]:-0}" -ge "$MIN_GENERATIONS" ] && [ "${R[generation_gaps]:-?}" = 0 ]; then
	ok "churn: at least $MIN_GENERATIONS generations published, every one known to the checker"
else
	not_ok "churn: at least $MIN_GENERATIONS generations published, every one known to the checker" \
		"generations=${R[generations]:-?} gaps=${R[generation_gaps]:-?}"
fi
if [ "${R[connects]:-0}" -ge "$MIN_CONNECTS" ] &&
	[ "${R[generations_with_connects]:-0}" -ge $((MIN_GENERATIONS / 2)) ] &&
	[ "${R[answered_checkable]:-0}" -ge 1000 ] &&
	[ "${R[refused_expected]:-0}" -ge 10 ]; then
	ok "churn: the client connected over the churn (>= $MIN_CONNECTS connects over >= $((MIN_GENERATIONS / 2)) generations, >= 1000 answers where a removed backend was possible, refusals while empty)"
else
	not_ok "churn: the client connected over the churn" \
		"connects=${R[connects]:-?} generations_with_connects=${R[generations_with_connects]:-?} answered_checkable=${R[answered_checkable]:-?} refused_expected=${R[refused_expected]:-?}"
fi
expect "churn: every connection's generations were published by the driver" \
	"${R[unknown_generations]:-?}" 0
expect "B12 churn: zero connects to a backend after the generation that removed it is published" \
	"${R[violations]:-?}" 0
expect "B14 churn: zero failed connects while a ready backend exists; ECONNREFUSED only when empty" \
	"${R[unexpected_failures]:-?}" 0
expect "B20 churn: getpeername() returns the ClusterIP on every connection" "${R[bad_peer]:-?}" 0
expect "churn: no map-full error with capacities of 32 backends (IDs recycled)" \
	"$("$FERRYCTL" --bpffs "$BPFFS" status -o json | "$PYTHON" -c \
		'import json,sys; print(json.load(sys.stdin)["agent"]["map_full_errors"])')" 0

finish
