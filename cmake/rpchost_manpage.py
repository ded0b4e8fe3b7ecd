#!/usr/bin/env python3
"""rpchost_manpage.py PAGE.md OUT NAME SECTION VERSION

Turns one of docs/'s man-style pages ("# name(N) — summary", then
"## SYNOPSIS" ...) into roff with go-md2man: the first heading becomes the
.TH line and a NAME section in the form whatis(1) reads, and text lines
that would start with a control character are escaped."""
import re
import subprocess
import sys

ROFF_REQUESTS = {"TH", "SH", "SS", "PP", "RS", "RE", "nf", "fi", "TP", "IP", "nh", "B", "I",
                 "br", "EX", "EE", "LP", "P", "HP", "ad", "na", "sp", "in", "ti", "ft"}


def main():
    src, out, name, section, version = sys.argv[1:6]
    md = open(src, encoding="utf-8").read()
    first, _, body = md.partition("\n")
    m = re.match(r"# \S+\(\w+\) — (.+)$", first)
    if not m:
        sys.exit("%s: the first line must be '# %s(%s) — summary'" % (src, name, section))
    roff = subprocess.run(["go-md2man"], input=body, capture_output=True, text=True,
                          check=True).stdout
    lines = []
    for line in roff.splitlines():
        if line.startswith(".TH "):
            continue
        word = re.match(r"[.'](\S*)", line)
        if word and word.group(1) not in ROFF_REQUESTS:
            line = "\\&" + line  # text, not a request
        lines.append(line)
    head = ['.TH "%s" "%s" "" "rpchost %s" "rpchost manual"' % (name.upper(), section, version),
            ".SH NAME", "%s \\- %s" % (name, m.group(1))]
    with open(out, "w", encoding="utf-8") as f:
        f.write("\n".join(head + lines) + "\n")


if __name__ == "__main__":
    main()
