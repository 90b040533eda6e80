#!/usr/bin/env python3
"""The Prometheus text exposition (format 0.0.4), read strictly, for the
kernel tests (tests/kernel/observe*.sh).

  prom.py check FILE           every line is a comment (# HELP / # TYPE /
                               other) or a sample `name{labels} value
                               [timestamp]`; every sample's family has one
                               HELP and one TYPE, given before its samples;
                               a histogram's _bucket/_sum/_count belong to
                               it. Prints "ok" or the problems (exit 1).
  prom.py value FILE SELECTOR  the value of the one sample that SELECTOR
                               names: `name` or `name{k="v",...}` (the
                               labels given must match, others may be
                               there); exit 1 unless exactly one matches.
  prom.py families FILE        the family names, one a line, sorted.
"""

import re
import sys

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\["\\n])*"'
VALUE = r"(?:[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?|[-+]?Inf|NaN)"
SAMPLE_RE = re.compile(r"^(%s)(?:\{((?:%s)(?:,%s)*,?)?\})? (%s)(?: -?[0-9]+)?$" % (NAME, LABEL, LABEL, VALUE))
HELP_RE = re.compile(r"^# HELP (%s) (.*)$" % NAME)
TYPE_RE = re.compile(r"^# TYPE (%s) (counter|gauge|histogram|summary|untyped)$" % NAME)
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\["\\n])*)"')


def parse(text):
    """(samples [(name, {labels}, value)], helps {name: text}, types
    {name: type}, problems [str])."""
    samples, helps, types, problems = [], {}, {}, []
    if text and not text.endswith("\n"):
        problems.append("the exposition does not end with a newline")
    for n, line in enumerate(text.splitlines(), 1):
        if not line:
            continue
        if line.startswith("# HELP "):
            m = HELP_RE.match(line)
            if not m:
                problems.append("line %d: bad HELP: %r" % (n, line))
            elif m.group(1) in helps:
                problems.append("line %d: second HELP for %s" % (n, m.group(1)))
            else:
                helps[m.group(1)] = m.group(2)
            continue
        if line.startswith("# TYPE "):
            m = TYPE_RE.match(line)
            if not m:
                problems.append("line %d: bad TYPE: %r" % (n, line))
            elif m.group(1) in types:
                problems.append("line %d: second TYPE for %s" % (n, m.group(1)))
            else:
                types[m.group(1)] = m.group(2)
            continue
        if line.startswith("#"):
            continue
        m = SAMPLE_RE.match(line)
        if not m:
            problems.append("line %d: not a sample: %r" % (n, line))
            continue
        labels = dict(LABEL_RE.findall(m.group(2) or ""))
        value = float(m.group(3).replace("Inf", "inf"))
        family = family_of(m.group(1), types)
        if family not in types or family not in helps:
            problems.append("line %d: sample %s before (or without) its family's HELP and TYPE"
                            % (n, m.group(1)))
        samples.append((m.group(1), labels, value))
    return samples, helps, types, problems


def family_of(name, types):
    for suffix in ("_bucket", "_sum", "_count"):
        base = name[:-len(suffix)]
        if name.endswith(suffix) and types.get(base) in ("histogram", "summary"):
            return base
    return name


def check(text):
    samples, helps, types, problems = parse(text)
    for fam in sorted(set(helps) ^ set(types)):
        problems.append("family %s has %s but no %s" % (
            fam, "HELP" if fam in helps else "TYPE", "TYPE" if fam in helps else "HELP"))
    if not samples:
        problems.append("no sample at all")
    # A histogram: cumulative buckets ending in +Inf, equal to _count.
    for fam, typ in types.items():
        if typ != "histogram":
            continue
        buckets = [(float(lb["le"].replace("Inf", "inf")), v) for name, lb, v in samples
                   if name == fam + "_bucket" and "le" in lb]
        counts = [v for name, lb, v in samples if name == fam + "_count"]
        if not buckets or buckets[-1][0] != float("inf"):
            problems.append("histogram %s: no +Inf bucket last" % fam)
            continue
        if any(b[0] <= a[0] or b[1] < a[1] for a, b in zip(buckets, buckets[1:])):
            problems.append("histogram %s: buckets not in order of le, or not cumulative" % fam)
        if len(counts) != 1 or counts[0] != buckets[-1][1]:
            problems.append("histogram %s: _count %s is not the +Inf bucket %s" % (fam, counts, buckets[-1][1]))
    return problems


def select(text, selector):
    m = re.match(r"^(%s)(?:\{(.*)\})?$" % NAME, selector)
    if not m:
        raise SystemExit("bad selector %r" % selector)
    want = dict(LABEL_RE.findall(m.group(2) or ""))
    samples = parse(text)[0]
    return [v for name, labels, v in samples
            if name == m.group(1) and all(labels.get(k) == x for k, x in want.items())]


def main():
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    with open(sys.argv[2], encoding="utf-8") as f:
        text = f.read()
    if sys.argv[1] == "check":
        problems = check(text)
        print("; ".join(problems[:5]) if problems else "ok")
        sys.exit(1 if problems else 0)
    if sys.argv[1] == "value":
        vals = select(text, sys.argv[3])
        if len(vals) != 1:
            print("%d samples match %s" % (len(vals), sys.argv[3]))
            sys.exit(1)
        v = vals[0]
        print(int(v) if v == int(v) and abs(v) < 2 ** 53 else repr(v))
        return
    if sys.argv[1] == "families":
        print("\n".join(sorted(parse(text)[2])))
        return
    raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
