#!/usr/bin/env python3
"""The README's kernel table, generated from docs/kernels.md (make test-kernels).

    readme_table.py [--md docs/kernels.md] README

Rewrites what lies between the two marker lines of README

    <!-- kernel-table: begin ... -->
    <!-- kernel-table: end -->

with one row per kernel: how it was tested, what works and what is missing,
in users' terms (the groups' outcomes mapped to what they serve, and for each
optional feature ferryd found missing, what ferryd says the user loses).
Without the markers, the block is added at the end of the README's
"## Kernel features" section. Exit 1 when docs/kernels.md cannot be read or
has no matrix."""
import argparse
import os
import re
import sys

BEGIN = "<!-- kernel-table: begin (scripts/kernels/readme_table.py from docs/kernels.md; edits here are overwritten) -->"
END = "<!-- kernel-table: end -->"

# What the kernel groups serve, in users' terms: a line works on a kernel
# when every one of its groups that ran there passed.
SERVES = [
    ("ClusterIP TCP and UDP (IPv4, IPv6, getpeername)", "tcp udp inline sockstate"),
    ("ECONNREFUSED for a port without endpoints", "refuse"),
    ("endpoint changes and the terminating fallback", "endpoints"),
    ("session affinity", "affinity"),
    ("NodePorts, LB IPs and externalIPs from outside (XDP and tc)", "nodeport packets nodeport_tc_filters tc_filters"),
    ("restarts and upgrades that keep connections", "restart"),
    ("feature reports and health probes", "features probes status"),
]


def cells(line):
    return [c.strip() for c in line.strip().strip("|").split("|")]


def parse(text):
    """{"date", "kernels": [{"name", "groups": {g: cell}, "run", "missing": [(feature, why, loss)]}]}"""
    lines = text.splitlines()
    m = re.search(r" on (\d{4}-\d\d-\d\d) [\d:]+ UTC", text)
    out = {"date": m.group(1) if m else "?", "kernels": []}
    table = [l for l in lines if l.startswith("|")]
    if len(table) < 3:
        return out
    heads = cells(table[0])[1:]
    ks = [{"name": h, "groups": {}, "features": {}, "run": "", "missing": []} for h in heads]
    for row in table[2:]:
        c = cells(row)
        label, vals = c[0], c[1:]
        for k, v in zip(ks, vals):
            if label == "run":
                k["run"] = v
            elif label.startswith("feature: "):
                k["features"][label[len("feature: "):]] = v
            else:
                k["groups"][label] = v
    out["kernels"] = ks
    # "## Failed cases": "- SHORT, GROUP (N): WHY. Cases: ..." or "- SHORT, GROUP: CASE".
    short = {k["name"]: ("host" if k["name"].startswith("this machine") else k["name"].split()[1]) for k in ks}
    for k in ks:
        k["fail_why"] = {}
    section = None
    for l in lines:
        if l.startswith("## "):
            section = l
            continue
        m = re.match(r"- ([^,]+), (\S+?)(?: \(\d+\))?: (.*)$", l)
        if section == "## Failed cases" and m:
            for k in ks:
                if short[k["name"]] == m.group(1):
                    k["fail_why"].setdefault(m.group(2), []).append(m.group(3))
    # "## What each kernel lacks": "- HEADING:" then "  - `f`: WHY. Without it: LOSS".
    current = None
    in_lacks = False
    for l in lines:
        if l.startswith("## "):
            in_lacks = l.startswith("## What each kernel lacks")
            continue
        if not in_lacks:
            continue
        m = re.match(r"- (.+?):( .*)?$", l)
        if m:
            current = next((k for k in ks if k["name"] == m.group(1)), None)
            continue
        m = re.match(r"  - `([a-z_]+)`: (.*?)\. Without it: (.*)$", l)
        if m and current is not None:
            current["missing"].append(m.groups())
    return out


def short_loss(loss):
    """ferryd's loss text, shortened: its first clause and its advice (the
    last '; ' part) when it has both."""
    head = loss.split(": ", 1)[0]
    if "; " in loss and head != loss:
        return "%s; %s" % (head, loss.rsplit("; ", 1)[1])
    return loss


def since(why):
    m = re.search(r"Linux (\d+\.\d+)", why)
    return "Linux %s" % m.group(1) if m else why


def row(k):
    ran = {g: v for g, v in k["groups"].items() if v != "not run"}
    works, broken, unverified = [], [], []
    for what, groups in SERVES:
        mine = [g for g in groups.split() if g in ran]
        failed_groups = [g for g in mine if ran[g].startswith("**")]
        # A group whose every failure is a test's time bound (known.txt) did
        # not show the kernel failing: its cases are unverified.
        bound = [g for g in failed_groups
                 if k["fail_why"].get(g) and all(w.startswith("the test's bound") for w in k["fail_why"][g])]
        if not mine:
            continue
        if set(failed_groups) - set(bound):
            broken.append("%s (%s)" % (what, ", ".join(sorted(set(failed_groups) - set(bound)))))
        elif bound:
            unverified.append("%s (%s)" % (what, ", ".join(bound)))
        else:
            works.append(what)
    passed = failed = skipped = 0
    for v in ran.values():
        # table.py's cells: "passed P[, skipped S]" or "**failed** F of T[, skipped S]"
        # (T counts the skipped cases too).
        m = re.search(r"skipped (\d+)", v)
        s = int(m.group(1)) if m else 0
        m = re.match(r"\*\*failed\*\* (\d+) of (\d+)", v)
        if m:
            failed += int(m.group(1))
            passed += int(m.group(2)) - int(m.group(1)) - s
        else:
            m = re.match(r"passed (\d+)", v)
            passed += int(m.group(1)) if m else 0
        skipped += s
    how = k["run"].split(",")[0].strip()
    how = {"host": "this machine", "tcg": "QEMU (TCG)", "kvm": "QEMU (KVM)"}.get(how, how)
    tested = "%s: %d groups; %d cases passed, %d failed, %d skipped" % (how, len(ran), passed, failed, skipped)
    missing = ["`%s` (%s): %s" % (f, since(why), short_loss(loss)) for f, why, loss in k["missing"]]
    if broken:
        missing.append("**failing tests**: %s: see docs/kernels.md" % "; ".join(broken))
    if unverified:
        missing.append("not verified by the last run (a test's time bound ran out in the "
                       "emulated guest before ferryd had published): %s" % "; ".join(unverified))
    name = re.sub(r"^this machine \((.*)\)$", r"\1 (the development machine)", k["name"])
    return "| %s | %s | %s | %s |" % (name, tested, "; ".join(works) or "-", " ".join(
        m if m.endswith(".") else m + "." for m in missing) or "nothing")


def block(parsed):
    out = [BEGIN,
           "What each kernel serves, from the last `make test-kernels` (%s; every "
           "group's cases, skips and failures are in [docs/kernels.md](docs/kernels.md)):"
           % parsed["date"], "",
           "| kernel | tested | what works | what is missing |", "|---|---|---|---|"]
    out += [row(k) for k in parsed["kernels"]]
    out.append(END)
    return out


def splice(readme, new):
    lines = readme.splitlines()
    if BEGIN.split(" (")[0] in readme and END in lines:
        b = next(i for i, l in enumerate(lines) if l.startswith(BEGIN.split(" (")[0]))
        e = lines.index(END)
        lines[b:e + 1] = new
    else:
        try:
            start = lines.index("## Kernel features")
        except ValueError:
            raise SystemExit("readme_table.py: no markers and no '## Kernel features' section")
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        while end > start and not lines[end - 1].strip():
            end -= 1
        lines[end:end] = [""] + new
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--md", default="docs/kernels.md")
    ap.add_argument("readme")
    a = ap.parse_args()
    try:
        parsed = parse(open(a.md).read())
    except OSError as e:
        print("readme_table.py: %s" % e, file=sys.stderr)
        return 1
    if not parsed["kernels"]:
        print("readme_table.py: %s has no kernel table" % a.md, file=sys.stderr)
        return 1
    text = splice(open(a.readme).read(), block(parsed))
    with open(a.readme + ".tmp", "w") as f:
        f.write(text)
    os.replace(a.readme + ".tmp", a.readme)
    return 0


if __name__ == "__main__":
    sys.exit(main())
