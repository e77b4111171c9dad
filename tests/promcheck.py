#!/usr/bin/env python3
"""A strict checker for the Prometheus text exposition format, version 0.0.4.

    promcheck.py FILE        exit 0 if FILE is a valid exposition, else 1 with reasons
    promcheck.py --self-test check that the checker refuses known-bad documents

Checks (stricter than Prometheus' own parser where taskgate promises more):
  - every line is a comment, a "# HELP name text", a "# TYPE name type" or a sample
    "name{label="value",...} value [timestamp]", and the text ends with a newline;
  - metric and label names match the data model's regular expressions, label names
    do not start with "__", a label appears once per sample;
  - label values use only the escapes \\\\, \\" and \\n; HELP text only \\\\ and \\n;
  - values are Go floats (including +Inf, -Inf, NaN); timestamps are integers;
  - at most one HELP and one TYPE per family, TYPE before the family's first sample,
    and the samples of a family are contiguous (no family appears twice);
  - no two samples have the same name and label set;
  - counter families end in "_total" and have non-negative values (taskgate's
    naming rule);
  - histograms: only name_bucket, name_sum, name_count samples; per label set the
    buckets have an "le" label, strictly increasing bounds ending with +Inf,
    non-decreasing counts, and the +Inf bucket equals _count; _sum and _count exist.
"""
import math
import re
import sys

NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
FLOAT = re.compile(r"[+-]?(Inf|inf|NaN|nan|(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?)")
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


class Bad(Exception):
    pass


def parse_float(text):
    if not FLOAT.fullmatch(text):
        raise Bad("not a float: %r" % text)
    return float(text.replace("Inf", "inf"))


def parse_labels(s, i, lineno):
    """s[i] is just after '{'; returns (labels dict, index after '}')."""
    labels = {}
    while True:
        if s[i:i + 1] == "}":
            return labels, i + 1
        m = LABEL.match(s, i)
        if not m:
            raise Bad("line %d: bad label name at %r" % (lineno, s[i:i + 20]))
        name = m.group(0)
        if name.startswith("__"):
            raise Bad("line %d: reserved label name %s" % (lineno, name))
        if name in labels:
            raise Bad("line %d: label %s repeated" % (lineno, name))
        i = m.end()
        if s[i:i + 2] != '="':
            raise Bad("line %d: expected =\" after %s" % (lineno, name))
        i += 2
        value = []
        while True:
            if i >= len(s):
                raise Bad("line %d: unterminated label value" % lineno)
            c = s[i]
            if c == "\\":
                nxt = s[i + 1:i + 2]
                if nxt == "\\":
                    value.append("\\")
                elif nxt == '"':
                    value.append('"')
                elif nxt == "n":
                    value.append("\n")
                else:
                    raise Bad("line %d: bad escape \\%s in a label value" % (lineno, nxt))
                i += 2
                continue
            if c == '"':
                i += 1
                break
            if c == "\n":
                raise Bad("line %d: raw newline in a label value" % lineno)
            value.append(c)
            i += 1
        labels[name] = "".join(value)
        if s[i:i + 1] == ",":
            i += 1
            if s[i:i + 1] == "}":  # a trailing comma is accepted by Prometheus
                return labels, i + 1
        elif s[i:i + 1] != "}":
            raise Bad("line %d: expected , or } after a label" % lineno)


def family_of(name, types):
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and types.get(name[: -len(suffix)]) == "histogram":
            return name[: -len(suffix)]
    return name


def check(text):
    if not text.endswith("\n"):
        raise Bad("the exposition does not end with a newline")
    helps, types, seen_series = {}, {}, set()
    finished, current = set(), None
    samples = {}  # family -> list of (name, labels, value)
    for lineno, line in enumerate(text[:-1].split("\n"), 1):
        if line == "":
            continue
        if line.startswith("#"):
            parts = line.split(" ", 3)
            if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                name = parts[2]
                if not NAME.fullmatch(name):
                    raise Bad("line %d: bad metric name %r" % (lineno, name))
                if name in finished or (name in samples and name != current):
                    raise Bad("line %d: %s for %s after its samples" % (lineno, parts[1], name))
                if parts[1] == "HELP":
                    if name in helps:
                        raise Bad("line %d: second HELP for %s" % (lineno, name))
                    body = parts[3] if len(parts) > 3 else ""
                    if re.search(r"\\[^\\n]", body.replace("\\\\", "")):
                        raise Bad("line %d: bad escape in HELP" % lineno)
                    helps[name] = body
                else:
                    if name in types:
                        raise Bad("line %d: second TYPE for %s" % (lineno, name))
                    if len(parts) != 4 or parts[3] not in TYPES:
                        raise Bad("line %d: bad TYPE line" % lineno)
                    if name in samples:
                        raise Bad("line %d: TYPE after samples of %s" % (lineno, name))
                    types[name] = parts[3]
            continue
        m = NAME.match(line)
        if not m:
            raise Bad("line %d: not a sample: %r" % (lineno, line))
        name, i = m.group(0), m.end()
        labels = {}
        if line[i:i + 1] == "{":
            labels, i = parse_labels(line, i + 1, lineno)
        rest = line[i:]
        if not rest.startswith(" "):
            raise Bad("line %d: expected a space before the value" % lineno)
        fields = rest.strip(" ").split(" ")
        if len(fields) not in (1, 2):
            raise Bad("line %d: expected value [timestamp]" % lineno)
        try:
            value = parse_float(fields[0])
        except Bad as e:
            raise Bad("line %d: %s" % (lineno, e))
        if len(fields) == 2 and not re.fullmatch(r"-?\d+", fields[1]):
            raise Bad("line %d: bad timestamp %r" % (lineno, fields[1]))
        fam = family_of(name, types)
        if fam != current:
            if fam in finished or fam in samples:
                raise Bad("line %d: samples of %s are not contiguous" % (lineno, fam))
            if current is not None:
                finished.add(current)
            current = fam
        key = (name, tuple(sorted(labels.items())))
        if key in seen_series:
            raise Bad("line %d: duplicate series %s%s" % (lineno, name, labels))
        seen_series.add(key)
        samples.setdefault(fam, []).append((name, labels, value))

    for fam, items in samples.items():
        kind = types.get(fam, "untyped")
        if kind == "counter":
            if not fam.endswith("_total"):
                raise Bad("counter %s does not end in _total" % fam)
            for name, labels, value in items:
                if name != fam:
                    raise Bad("counter %s has a sample named %s" % (fam, name))
                if not value >= 0:
                    raise Bad("counter %s%s is negative or NaN" % (fam, labels))
        elif kind == "histogram":
            groups = {}
            for name, labels, value in items:
                suffix = name[len(fam):]
                if suffix not in ("_bucket", "_sum", "_count"):
                    raise Bad("histogram %s has a sample named %s" % (fam, name))
                rest = dict(labels)
                le = rest.pop("le", None)
                g = groups.setdefault(tuple(sorted(rest.items())),
                                      {"buckets": [], "sum": None, "count": None})
                if suffix == "_bucket":
                    if le is None:
                        raise Bad("%s_bucket%s has no le label" % (fam, labels))
                    g["buckets"].append((parse_float(le), value))
                elif le is not None:
                    raise Bad("%s%s carries an le label" % (name, labels))
                elif suffix == "_sum":
                    g["sum"] = value
                else:
                    g["count"] = value
            for lbl, g in groups.items():
                b = g["buckets"]
                if not b or not math.isinf(b[-1][0]):
                    raise Bad("histogram %s%s lacks a +Inf bucket (last)" % (fam, dict(lbl)))
                for (l1, c1), (l2, c2) in zip(b, b[1:]):
                    if not l2 > l1:
                        raise Bad("histogram %s%s: bounds not increasing" % (fam, dict(lbl)))
                    if c2 < c1:
                        raise Bad("histogram %s%s: counts not cumulative" % (fam, dict(lbl)))
                if g["sum"] is None or g["count"] is None:
                    raise Bad("histogram %s%s lacks _sum or _count" % (fam, dict(lbl)))
                if b[-1][1] != g["count"]:
                    raise Bad("histogram %s%s: +Inf bucket %s != _count %s"
                              % (fam, dict(lbl), b[-1][1], g["count"]))
        elif kind in ("gauge", "untyped"):
            for name, labels, value in items:
                if name != fam:
                    raise Bad("%s %s has a sample named %s" % (kind, fam, name))
    return len(seen_series), len(samples)


BAD = {
    "no final newline": "# TYPE a gauge\na 1",
    "duplicate series": "# TYPE a gauge\na{x=\"1\"} 1\na{x=\"1\"} 2\n",
    "interleaved families": "# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\na{x=\"2\"} 1\n",
    "TYPE after samples": "a 1\n# TYPE a gauge\n",
    "bad escape": "# TYPE a gauge\na{x=\"\\t\"} 1\n",
    "bad value": "# TYPE a gauge\na 1,5\n",
    "bad metric name": "# TYPE 1a gauge\n1a 1\n",
    "counter without _total": "# TYPE a counter\na 1\n",
    "negative counter": "# TYPE a_total counter\na_total -1\n",
    "histogram without +Inf": "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n",
    "histogram not cumulative": "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\n"
                                "h_sum 1\nh_count 1\n",
    "histogram +Inf != count": "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 3\n",
    "histogram without _count": "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\n",
    "two TYPE lines": "# TYPE a gauge\n# TYPE a gauge\na 1\n",
    "label repeated": "# TYPE a gauge\na{x=\"1\",x=\"2\"} 1\n",
    "unterminated label": "# TYPE a gauge\na{x=\"1} 1\n",
}
GOOD = ("# HELP a_total with \\\\ and \\n\n# TYPE a_total counter\na_total{m=\"q\\\"x\\\\\"} 3\n"
        "# TYPE h histogram\nh_bucket{le=\"0.5\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 1.5\n"
        "h_count 2\n# TYPE g gauge\ng NaN\ng{a=\"b\"} +Inf 1700000000000\n")


def self_test():
    failures = 0
    for what, text in BAD.items():
        try:
            check(text)
            print("not ok - checker refuses: %s" % what)
            failures += 1
        except Bad:
            print("ok - checker refuses: %s" % what)
    try:
        check(GOOD)
        print("ok - checker accepts a valid exposition")
    except Bad as e:
        print("not ok - checker accepts a valid exposition (%s)" % e)
        failures += 1
    return 1 if failures else 0


def main():
    if len(sys.argv) == 2 and sys.argv[1] == "--self-test":
        return self_test()
    if len(sys.argv) != 2:
        print(__doc__.strip().split("\n\n")[1], file=sys.stderr)
        return 2
    with open(sys.argv[1], encoding="utf-8") as f:
        text = f.read()
    try:
        series, families = check(text)
    except Bad as e:
        print("invalid exposition: %s" % e)
        return 1
    print("valid exposition: %d series in %d families" % (series, families))
    return 0


if __name__ == "__main__":
    sys.exit(main())
