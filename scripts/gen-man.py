#!/usr/bin/env python3
"""Generates the flare(1) man page from docs/cli.md (a small Markdown subset:
indented code blocks, "- " lists with indented continuations, pipe tables,
`code`, paragraphs).

usage: gen-man.py [docs/cli.md [VERSION]] > docs/flare.1
"""
import re
import sys

# Paragraphs that start a new man section.
SECTIONS = [
    ("Numbers are parsed strictly", "ARGUMENTS"),
    ("Exit codes:", "EXIT STATUS"),
    ("Human-readable output is the default", "JSON EVENTS"),
    ("Environment:", "ENVIRONMENT"),
]


def esc(text):
    text = text.replace("\\", "\\e")
    out, parts = [], re.split(r"(`[^`]*`)", text)
    for p in parts:
        if p.startswith("`") and p.endswith("`") and len(p) > 1:
            out.append("\\fB" + p[1:-1].replace("-", "\\-") + "\\fR")
        else:
            out.append(p)
    s = "".join(out)
    s = re.sub(r"\*\*([^*]+)\*\*", r"\\fB\1\\fR", s)
    return s


def line_out(text):
    """A text line; troff control characters at the start are escaped."""
    text = esc(text)
    if text.startswith((".", "'")):
        text = "\\&" + text
    return text


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else "docs/cli.md"
    version = sys.argv[2] if len(sys.argv) > 2 else ""
    lines = open(src, encoding="utf-8").read().split("\n")
    out = ['.\\" Generated from docs/cli.md by scripts/gen-man.py: edit those, not this.',
           '.TH FLARE 1 "" "flare %s" "User Commands"' % version,
           ".SH NAME",
           "flare \\- a libp2p node: identity, listen, dial, ping, relay, AutoNAT, NAT hole punching",
           ".SH SYNOPSIS"]
    i, n, synopsis_done = 1, len(lines), False
    while i < n:
        ln = lines[i]
        if not ln.strip():
            i += 1
            continue
        if ln.startswith("    "):  # a code block
            block = []
            while i < n and (lines[i].startswith("    ") or not lines[i].strip()):
                block.append(lines[i][4:])
                i += 1
            while block and not block[-1].strip():
                block.pop()
            out += [".nf"] + [("\\&" + b.replace("\\", "\\e")) for b in block] + [".fi"]
            if not synopsis_done:
                out.append(".SH DESCRIPTION")
                synopsis_done = True
            continue
        if ln.startswith("|"):  # a table: one .TP per row
            rows = []
            while i < n and lines[i].startswith("|"):
                cells = [c.strip() for c in lines[i].strip().strip("|").split("|")]
                rows.append(cells)
                i += 1
            header = rows[0]
            out.append(".RS")
            for r in rows[1:]:
                if all(set(c) <= set("-: ") for c in r):
                    continue
                out += [".TP", line_out(r[0])]
                rest = [("%s: %s" % (header[k], r[k])) if k > 1 else r[k] for k in range(1, len(r))]
                out.append(line_out("; ".join(rest)))
            out.append(".RE")
            continue
        indent = len(ln) - len(ln.lstrip())
        if ln.lstrip().startswith("- "):  # a list item with indented continuations
            text = [ln.lstrip()[2:]]
            i += 1
            while i < n and lines[i].strip() and lines[i].startswith(" " * (indent + 2)) \
                    and not lines[i].lstrip().startswith(("|", "- ")):
                text.append(lines[i].strip())
                i += 1
            out += [".IP \\(bu 2"] + [line_out(t) for t in text]
            # a table inside the item
            while i < n and not lines[i].strip() and i + 1 < n and lines[i + 1].lstrip().startswith("|"):
                i += 1
                rows = []
                while i < n and lines[i].lstrip().startswith("|"):
                    rows.append([c.strip() for c in lines[i].strip().strip("|").split("|")])
                    i += 1
                out.append(".RS")
                for r in rows[1:]:
                    if all(set(c) <= set("-: ") for c in r):
                        continue
                    out += [".TP", line_out(r[0])]
                    out.append(line_out("; ".join(r[1:])))
                out.append(".RE")
                while i < n and lines[i].strip() and lines[i].startswith(" " * (indent + 2)):
                    out.append(line_out(lines[i].strip()))
                    i += 1
            continue
        para = []
        while i < n and lines[i].strip() and not lines[i].startswith(("|", "    ")) \
                and not lines[i].lstrip().startswith("- "):
            para.append(lines[i].strip())
            i += 1
        for prefix, section in SECTIONS:
            if para[0].startswith(prefix):
                out.append(".SH " + section)
        if para == ["Exit codes:"]:
            continue
        out.append(".PP")
        out += [line_out(p) for p in para]
    if ".SH ENVIRONMENT" not in out:
        out.append(".SH ENVIRONMENT")
    out += [".TP", "\\fBFLARE_LOG\\fR",
            "Log level of the human output: error, warn, info (default) or debug; "
            "\\fB\\-q\\fR and \\fB\\-v\\fR override it.",
            ".SH SEE ALSO",
            "docs/cli.md, docs/ARCHITECTURE.md and docs/lab.md in the flare sources."]
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
