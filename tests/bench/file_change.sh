#!/usr/bin/env bash
# One change on the file source: ferryd on `scripts/gen-cluster.py N 10`
# (JSON, or the same List as YAML), then FLIPS renames of the file, each
# with one endpoint of one service replaced (and the next one putting it
# back), services spread over the list. Prints per rename the time from
# os.rename to the next publish of ferry_state (polled with one bpf
# syscall), and ferryd's own log line for that generation; ferryd's RSS and
# peak after its first generation and after the renames.
#
#   BUILD=build-x tests/bench/file_change.sh [--sizes "10000 100000"]
#       [--formats "json yaml"] [--flips 6]
#
# Needs root (ferryd attaches to a cgroup this run creates; no traffic is
# sent). Output: lines "N format k publish_ms | ferryd: <its line>".
set -u
SIZES="10000"
FORMATS="json yaml"
FLIPS=6
while [ $# -gt 0 ]; do
	case $1 in
	--sizes) SIZES=$2; shift ;;
	--formats) FORMATS=$2; shift ;;
	--flips) FLIPS=$2; shift ;;
	*) echo "usage: $0 [--sizes \"N...\"] [--formats \"json yaml\"] [--flips K]" >&2; exit 2 ;;
	esac
	shift
done

# shellcheck source=tests/lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=tests/wait.sh
source "$REPO/tests/wait.sh"
need_root
mkdir "$CG" || exit 1

cat >"$WORK/flip.py" <<PY
$FERRY_STATE_PY
import json, os, runpy, sys, time
pin, path, n, flips, fmt = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
doc = json.load(open(path + ".src"))
slices = {it["metadata"]["name"]: it for it in doc["items"] if it["kind"] == "EndpointSlice"}
st = StateMap(pin)

def dump(d):
    if fmt == "json":
        return json.dumps(d)
    import yaml
    return yaml.dump(d, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper), sort_keys=False)

orig = {}
for k in range(flips):
    i = round((k // 2 + 0.5) * (n - 1) / max(flips // 2, 1))
    ep = slices["svc-%d-1" % i]["endpoints"][-1]
    if k % 2 == 0:
        orig[i] = ep["addresses"][0]
        ep["addresses"] = ["198.19.255.%d" % (k + 1)]
    else:
        ep["addresses"] = [orig.pop(i)]
    text = dump(doc)
    with open(path + ".tmp", "w") as f:
        f.write(text)
    t_pub, g0 = st.applied_ns(), st.generation()
    time.sleep(0.3)
    t0 = time.monotonic()
    os.rename(path + ".tmp", path)
    while st.applied_ns() == t_pub:
        if time.monotonic() - t0 > 60:
            print(k, "timeout", flush=True)
            sys.exit(1)
        time.sleep(0.0002)
    ms = (time.monotonic() - t0) * 1000
    print(k, "%.3f" % ms, g0, st.generation(), flush=True)
PY

# ferryd's resident and peak memory now.
rss() { awk '/^VmRSS|^VmHWM/ {printf "%s %.1f MB ", $1, $2 / 1024}' "/proc/$FERRYD_PID/status"; }

for n in $SIZES; do
	python3 "$REPO/scripts/gen-cluster.py" "$n" 10 >"$WORK/state.src" || exit 1
	for fmt in $FORMATS; do
		path=$WORK/state.$fmt
		cp "$WORK/state.src" "$path.src"
		if [ "$fmt" = yaml ]; then
			python3 -c 'import json, sys, yaml; yaml.dump(json.load(open(sys.argv[1])), open(sys.argv[2], "w"), Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper), sort_keys=False)' \
				"$WORK/state.src" "$path"
		else
			cp "$WORK/state.src" "$path"
		fi
		: >"$FERRYD_LOG"
		ferryd_spawn "$path" --log-level info --max-services $((n + 16)) \
			--max-backends $((n * 10 + 16)) || exit 1
		wait_generation 1 300 || { echo "no first generation"; tail -n 5 "$FERRYD_LOG"; exit 1; }
		echo "$n $fmt ferryd after generation 1: $(rss)"
		python3 "$WORK/flip.py" "$BPFFS/ferry_state" "$path" "$n" "$FLIPS" "$fmt" |
			while read -r k ms g0 g1; do
				line=$(grep -F "generation $g1:" "$FERRYD_LOG" | tail -n 1 | sed 's/.*generation/generation/; s/"$//')
				echo "$n $fmt $k $ms ms | ferryd: $line"
			done
		echo "$n $fmt ferryd after the changes: $(rss)"
		ferryd_reset
		rm -f "$path" "$path.src" "$path.tmp"
	done
done
