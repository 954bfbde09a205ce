#!/usr/bin/env python3
"""Checks the flare CLI's JSON events against docs/cli.md.

usage: check_events.py DOC SRC_DIR [LOG...]

The event table of DOC (the rows `| `name` | fields | when |` after the line
"| event | fields | when |") lists each event's fields: the backticked names
of the fields column outside parentheses (a parenthesis explains values).
Every JSON line of each LOG must be a documented event with documented
fields only (`event` and `ts` are common). Every event name the CLI source
passes to cli_jsonf() must be documented too. Prints each problem; exits 1
if there is any, 0 otherwise (and how much it checked).
"""
import json
import os
import re
import sys

COMMON = {"event", "ts"}


def strip_parens(text):
    out, depth = [], 0
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth = max(0, depth - 1)
        elif depth == 0:
            out.append(ch)
    return "".join(out)


def doc_events(path):
    events, in_table = {}, False
    for line in open(path, encoding="utf-8"):
        line = line.strip()
        if re.match(r"^\|\s*event\s*\|\s*fields\s*\|", line):
            in_table = True
            continue
        if not in_table:
            continue
        if not line.startswith("|"):
            in_table = False
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) < 3 or set(cells[0]) <= set("-: "):
            continue
        name = re.findall(r"`([a-z_0-9]+)`", cells[0])
        if len(name) != 1:
            continue
        fields = set(re.findall(r"`([A-Za-z_][A-Za-z0-9_]*)`", strip_parens(cells[1])))
        events[name[0]] = fields
    return events


def source_events(src_dir):
    """Event names given to cli_jsonf(): string literals in its first
    argument, or in the assignment of the variable passed there."""
    names = {}
    for fn in sorted(os.listdir(src_dir)):
        if not fn.endswith(".c"):
            continue
        text = open(os.path.join(src_dir, fn), encoding="utf-8").read()
        for m in re.finditer(r"\bcli_jsonf\(", text):
            i, depth, start = m.end(), 0, m.end()
            while i < len(text):
                c = text[i]
                if c == "(":
                    depth += 1
                elif c == ")":
                    if depth == 0:
                        break
                    depth -= 1
                elif c == "," and depth == 0:
                    break
                elif c == '"':
                    i = text.index('"', i + 1)
                i += 1
            arg = text[start:i].strip()
            if arg.startswith("const char *event"):
                continue  # the definition
            lits = re.findall(r'"([a-z_0-9]+)"', arg)
            if not lits and re.match(r"^[A-Za-z_]\w*$", arg):
                a = re.search(r"\b%s\s*=\s*([^;]*);" % re.escape(arg), text[: m.start()][::-1][::-1])
                lits = re.findall(r'"([a-z_0-9]+)"', a.group(1)) if a else []
            if not lits:
                lits = ["<unresolved: %s:%s>" % (fn, arg)]
            for name in lits:
                names.setdefault(name, fn)
    return names


def main():
    if len(sys.argv) < 3:
        print(__doc__)
        return 2
    doc, src = sys.argv[1], sys.argv[2]
    events = doc_events(doc)
    problems = []
    if len(events) < 10:
        problems.append("%s: found only %d events in the event table" % (doc, len(events)))
    for name, fn in sorted(source_events(src).items()):
        if name not in events:
            problems.append("%s: emits event %r, not in %s" % (fn, name, doc))
    lines = seen = 0
    for log in sys.argv[3:]:
        for n, line in enumerate(open(log, encoding="utf-8", errors="replace"), 1):
            line = line.strip()
            if not line.startswith("{"):
                continue
            try:
                e = json.loads(line)
            except ValueError:
                continue
            if not isinstance(e, dict) or "event" not in e:
                continue
            lines += 1
            name = e["event"]
            if name not in events:
                problems.append("%s:%d: event %r is not documented" % (log, n, name))
                continue
            seen += 1
            for k in e:
                if k not in COMMON and k not in events[name]:
                    problems.append("%s:%d: event %r has field %r, not documented" % (log, n, name, k))
            if "ts" not in e:
                problems.append("%s:%d: event %r has no ts" % (log, n, name))
    for p in sorted(set(problems)):
        print("FAIL " + p)
    print("checked %d documented events, %d JSON lines" % (len(events), lines))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
