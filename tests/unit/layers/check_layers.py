"""The layering of host/ (docs/architecture.md, "Layout"), checked on the
sources: every folder is a layer, lowest first

    core < metrics < config < daemon < crash < registry < event < transport < rpc < web
    < builtin < console < host/ top

A file includes headers of its own folder freely, and of a lower layer only
that layer's interface header (named after the folder: "transport/transport.h");
main.c and server.c (the top) include only interface headers. Nothing
includes upward, and a host header is always named with its folder.
A new folder under host/ must be added to LAYERS (a test failure says so).

    check_layers.py HOST_DIR     exit 0 if clean; else one line per violation
"""
import os
import re
import sys

LAYERS = ["core", "metrics", "config", "daemon", "crash", "registry", "event", "transport",
          "rpc", "web", "builtin", "console"]
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def main():
    host = os.path.abspath(sys.argv[1])
    errors = []
    folders = sorted(d for d in os.listdir(host) if os.path.isdir(os.path.join(host, d)))
    for d in folders:
        if d not in LAYERS:
            errors.append("host/%s: a folder that is not a layer: add it to LAYERS in %s "
                          "and to docs/architecture.md" % (d, os.path.relpath(__file__)))
    for layer in LAYERS:
        if not os.path.isfile(os.path.join(host, layer, layer + ".h")):
            errors.append("host/%s: no interface header %s/%s.h" % (layer, layer, layer))
    headers = {}
    for root, _, files in os.walk(host):
        for f in files:
            if f.endswith(".h") and root != host:
                headers.setdefault(f, os.path.relpath(os.path.join(root, f), host))
    for root, _, files in os.walk(host):
        for f in sorted(files):
            if not f.endswith((".c", ".h")):
                continue
            rel = os.path.relpath(os.path.join(root, f), host)
            own = rel.split(os.sep)[0] if os.sep in rel else None  # None: the top
            rank = LAYERS.index(own) if own in LAYERS else len(LAYERS)
            with open(os.path.join(root, f), errors="replace") as fh:
                text = fh.read()
            for line_no, inc in ((text.count("\n", 0, m.start()) + 1, m.group(1))
                                 for m in INCLUDE.finditer(text)):
                where = "host/%s:%d: #include \"%s\"" % (rel, line_no, inc)
                parts = inc.split("/")
                if len(parts) == 1:
                    if inc in headers:
                        errors.append("%s: name the folder (\"%s\")" % (where, headers[inc]))
                    continue
                dep = parts[0]
                if dep not in LAYERS:
                    continue  # lib/, generated and public headers
                if dep == own:
                    continue
                if LAYERS.index(dep) > rank:
                    errors.append("%s: %s includes upward (%s is above %s)"
                                  % (where, own or "the top", dep, own))
                elif inc != "%s/%s.h" % (dep, dep):
                    errors.append("%s: include the interface \"%s/%s.h\" instead"
                                  % (where, dep, dep))
    for e in errors:
        print(e)
    print("%d layering violations in %s" % (len(errors), host))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
