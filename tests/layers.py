#!/usr/bin/env python3
"""The code map, checked: which lib/ layer may include which, no include cycles, and
every header's "the only code that ..." claim held to the calls it names.

Prints TAP ("ok - ..." / "not ok - ...") and exits 1 on any failure. Run from the
repository root (make layers; tests/run-all.sh runs it first).

The layers, lowest first. A file may include headers of its own layer and of the
layers listed as below it; anything else goes up a layer or across a forbidden pair.
README.md's "Code map" explains each layer; keep the two in step."""
import os
import re
import sys

LAYERS = {
    # layer: the layers it may include (besides itself)
    "base": [],
    "net": ["base"],
    "fs": ["base"],
    "model": ["base", "fs", "net"],
    "stats": ["base", "fs", "model", "net"],
    "lb": ["base", "fs", "model", "stats"],
    "sched": ["base", "fs", "model", "net", "stats", "lb"],
    "jobs": ["base", "fs", "model", "net", "stats", "lb", "sched"],
    "web": ["base"],
}
# The programs on top: the FastCGI program may use every layer; the cron programs
# every layer but the HTTP server side (they answer no requests).
PROGRAMS = {
    "cgi-bin": list(LAYERS),
    "cron": [l for l in LAYERS if l != "web"],
}

# Calls that only one place may make. Each rule: a name, the regex of the call (matched
# on code with comments and string literals blanked), the folders or files allowed to
# make it, and the header whose contract says so (that header must say "the only code
# that", so a claim and its check cannot drift apart).
FS_CALLS = (r"open|openat|openat2|creat|fopen|freopen|opendir|fdopendir|rename|renameat|"
            r"renameat2|link|linkat|symlink|symlinkat|unlink|unlinkat|rmdir|mkdir|mkdirat|"
            r"flock|fsync|fdatasync|syncfs|sync_file_range|ftruncate|truncate|"
            r"fallocate|posix_fallocate|chmod|fchmod|chown|fchown|utimensat")
RULES = [
    ("file system calls", r"(?<![\w.>])(?:%s)\s*\(" % FS_CALLS, ["lib/fs/"], "lib/fs/README"),
    ("libcurl calls", r"(?<![\w.>])curl_\w+\s*\(", ["lib/net/"], "lib/net/README"),
    ("libcurl header", r"#\s*include\s*<curl/", ["lib/net/"], "lib/net/http_client.h"),
    ("yajl parsers and generators",
     r"(?<![\w.>])yajl_(?:alloc|parse|complete_parse|tree_parse|gen_alloc)\s*\(",
     ["lib/base/json.c"], "lib/base/json.h"),
    ("libfcgi calls", r"(?<![\w.>])FCGX_\w+\s*\(", ["cgi-bin/main.c"], "cgi-bin/main.c"),
    # A path into stats/ is spelt in a string literal, so this rule reads the literals
    # (the "strings" flag): a prefix (the root) joined to stats ("%s/stats..."), or a
    # path reaching into its folders or files ("/stats/events/", "/stats/totals.json").
    # Names relative to stats/ go through statsfile; includes ("stats/alerts.h"),
    # messages ("stats: stats/totals.json ...") and URLs ("/api/v2/stats/tasks") do
    # not match, nor does store_init's list of the tree's folders.
    ("stats/ folder paths", r'"[^"\n]*(?:%s/stats\b|/stats/(?:events|hourly)/|'
     r'/stats/(?:totals|alerts)\.json)',
     ["lib/fs/statsfile.c"], "lib/fs/statsfile.h", "strings"),
    # A task's files folder: the root joined to files/ ("%s/files/%02x/%s").
    ("files/ folder paths", r'"%s/files\b', ["lib/fs/taskfiles.c"],
     "lib/fs/taskfiles.h", "strings"),
    # The request counters' folder: the root joined to run/requests.
    ("run/requests/ paths", r'"%s/run/requests\b', ["lib/fs/reqcount.c"], "lib/fs/reqcount.h",
     "strings"),
    # The log file gets its lines through base/log's sink, which only logfile sets.
    ("the log sink", r"(?<![\w.>])log_set_sink\s*\(", ["lib/fs/logfile.c", "lib/base/log."],
     "lib/fs/logfile.h"),
]

SRC_DIRS = ["lib", "cgi-bin", "cron"]
INCLUDE = re.compile(r'^\s*#\s*include\s*"([^"]+)"', re.M)


def sources():
    for top in SRC_DIRS:
        for d, _, files in os.walk(top):
            for f in sorted(files):
                if f.endswith((".c", ".h")):
                    yield os.path.join(d, f)


def blank_comments_and_strings(text, keep_strings=False):
    """C text with comments and string/char literals replaced by spaces (newlines
    kept), so a call named in a comment or a message is not taken for a call; with
    keep_strings, only the comments (for rules about what literals spell)."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            out.append(text[i:j + 1] if keep_strings else c + " " * (min(j, n) - i - 1) + c)
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def says_only_code(path):
    """Whether the file (a header comment or a README) claims "the only code that",
    however the comment wraps it."""
    text = open(path, encoding="utf-8").read()
    text = re.sub(r"\n\s*\*?", " ", text)
    return "the only code that" in re.sub(r"\s+", " ", text)


def layer_of(path):
    parts = path.split(os.sep)
    if parts[0] == "lib" and len(parts) >= 3:
        return parts[1]
    return None


def main():
    results = []  # (ok, text)
    files = list(sources())

    # 1. every lib file sits in a known layer, and lib/ has no loose files
    loose = [f for f in files if f.startswith("lib" + os.sep) and layer_of(f) is None]
    unknown = sorted({layer_of(f) for f in files if layer_of(f) and layer_of(f) not in LAYERS})
    results.append((not loose, "lib/ holds no file outside a layer folder" +
                    ("" if not loose else ": " + " ".join(loose))))
    results.append((not unknown, "every lib/ folder is a known layer" +
                    ("" if not unknown else ": " + " ".join(unknown))))
    for layer in LAYERS:
        readme = os.path.join("lib", layer, "README")
        results.append((os.path.isfile(readme), "lib/%s has a README saying what lives there" % layer))

    # 2. includes only go down (or within a layer), and name the layer
    bad = []
    graph = {}  # module ("layer/name") -> set of modules it includes
    for f in files:
        text = open(f, encoding="utf-8").read()
        top = f.split(os.sep)[0]
        me = layer_of(f)
        allowed = LAYERS.get(me, []) + [me] if me else PROGRAMS.get(top, [])
        module = os.path.splitext(f)[0]
        for inc in INCLUDE.findall(text):
            if "/" not in inc:
                if top == "lib":
                    bad.append("%s includes \"%s\" without its layer folder" % (f, inc))
                continue  # cgi-bin/app.h and the like: the program's own headers
            if inc.startswith("."):
                bad.append("%s includes \"%s\" by a relative path" % (f, inc))
                continue
            target_layer = inc.split("/")[0]
            if not os.path.isfile(os.path.join("lib", inc)):
                bad.append("%s includes \"%s\", which is not in lib/" % (f, inc))
                continue
            if target_layer not in allowed:
                bad.append("%s (%s) includes %s: %s may not depend on %s" %
                           (f, me or top, inc, me or top, target_layer))
            target = os.path.join("lib", os.path.splitext(inc)[0])
            if target != module:
                graph.setdefault(module, set()).add(target)
    results.append((not bad, "every include goes down the layers" +
                    ("" if not bad else ":\n#   " + "\n#   ".join(bad))))

    # 3. no include cycles between modules (a module: name.c with name.h)
    cycles = []
    state = {}

    def visit(m, stack):
        state[m] = 1
        stack.append(m)
        for t in sorted(graph.get(m, ())):
            if state.get(t) == 1:
                cycles.append(" -> ".join(stack[stack.index(t):] + [t]))
            elif t not in state:
                visit(t, stack)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [])
    results.append((not cycles, "no include cycles" +
                    ("" if not cycles else ":\n#   " + "\n#   ".join(cycles))))

    # 4. the exclusive calls, and the contracts that claim them
    stated = set()
    for name, pattern, allowed, contract, *flags in RULES:
        rx = re.compile(pattern)
        stray = []
        for f in files:
            if any(f == a or f.startswith(a) for a in allowed):
                continue
            code = blank_comments_and_strings(open(f, encoding="utf-8").read(),
                                              keep_strings="strings" in flags)
            for ln, line in enumerate(code.split("\n"), 1):
                m = rx.search(line)
                if m:
                    stray.append("%s:%d: %s" % (f, ln, m.group(0).strip()))
        where = " and ".join(allowed)
        results.append((not stray, "%s only in %s" % (name, where) +
                        ("" if not stray else ":\n#   " + "\n#   ".join(stray))))
        claims = os.path.isfile(contract) and says_only_code(contract)
        if contract not in stated:
            stated.add(contract)
            results.append((claims, "%s states the contract checked here" % contract))

    # 5. every "the only code that" claim in a header is one this script checks
    checked = {r[3] for r in RULES}
    for f in files + [os.path.join("lib", l, "README") for l in LAYERS]:
        if not os.path.isfile(f) or f in checked:
            continue
        if says_only_code(f):
            results.append((False, "%s claims \"the only code that\" but no rule here checks it" % f))

    failed = 0
    for ok, text in results:
        print(("ok - " if ok else "not ok - ") + text)
        failed += not ok
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
