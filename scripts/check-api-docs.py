#!/usr/bin/env python3
"""Checks that every public function in include/flare/*.h is documented:
a comment must come before its declaration (directly, or above the group
of declarations it belongs to, with no blank line in between), and for a
function that returns a value that comment must say what it returns (the
word "return", or the FLARE_ERR_* codes it gives). Exit status 1 lists the
offenders."""
import os
import re
import sys

DECL = re.compile(r'^(?!typedef|static|#|extern "C")([A-Za-z_][\w \*]*?)\b(flare_\w+)\s*\(')
RETURN_WORDS = re.compile(r'return|FLARE_ERR_|FLARE_OK', re.I)


def comment_above(lines, i):
    """The comment text covering the declaration at line i, or None."""
    j = i - 1
    while j >= 0:
        s = lines[j].strip()
        if not s:
            return None
        if s.endswith('*/'):
            text = []
            while j >= 0:
                text.append(lines[j])
                if '/*' in lines[j]:
                    return '\n'.join(reversed(text))
                j -= 1
            return None
        j -= 1  # another declaration of the same group, or a continuation line
    return None


def check(path):
    bad = []
    lines = open(path, encoding='utf-8').read().split('\n')
    for i, line in enumerate(lines):
        m = DECL.match(line)
        if not m:
            continue
        # A declaration ends with ';' (a definition with '{' is not API text).
        k = i
        while k < len(lines) and ';' not in lines[k] and '{' not in lines[k]:
            k += 1
        if k >= len(lines) or '{' in lines[k].split(';')[0]:
            continue
        ret, name = m.group(1).strip(), m.group(2)
        c = comment_above(lines, i)
        returns_value = not re.fullmatch(r'(FLARE_API\s+)?void', ret)
        if c is None:
            bad.append(f'{path}:{i + 1}: {name}: no comment')
        elif returns_value and not RETURN_WORDS.search(c):
            bad.append(f'{path}:{i + 1}: {name}: the comment does not say what it returns')
    return bad


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), '..')
    inc = os.path.join(root, 'include', 'flare')
    bad = []
    for f in sorted(os.listdir(inc)):
        if f.endswith('.h'):
            bad += check(os.path.join(inc, f))
    for b in bad:
        print(b)
    print(f'{len(bad)} undocumented public function(s)' if bad else 'public API documented')
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
