#!/usr/bin/env python3
"""doc_coverage.py XML_DIR NAMES_FILE: fails (exit 1, naming them) when a name listed in
NAMES_FILE (one per line: the public functions, macros, types and enumerators of goro.h)
has no description in Doxygen's XML output, or is not in it at all. Standard library only.
"""
import glob
import os
import sys
import xml.etree.ElementTree as ET


def text(node):
    return "".join(node.itertext()).strip() if node is not None else ""


def main():
    xml_dir, names_file = sys.argv[1], sys.argv[2]
    documented = {}
    for path in glob.glob(os.path.join(xml_dir, "*.xml")):
        root = ET.parse(path).getroot()
        for compound in root.iter("compounddef"):
            name = text(compound.find("compoundname"))
            desc = text(compound.find("briefdescription")) + text(compound.find("detaileddescription"))
            documented[name] = documented.get(name) or bool(desc)
        for member in root.iter("memberdef"):
            name = text(member.find("name"))
            desc = text(member.find("briefdescription")) + text(member.find("detaileddescription"))
            documented[name] = documented.get(name) or bool(desc)
        for value in root.iter("enumvalue"):
            name = text(value.find("name"))
            desc = text(value.find("briefdescription")) + text(value.find("detaileddescription"))
            documented[name] = documented.get(name) or bool(desc)
    with open(names_file) as f:
        names = [line.strip() for line in f if line.strip()]
    missing = [n for n in names if not documented.get(n)]
    if missing:
        print("undocumented or missing from the reference: " + " ".join(missing))
        sys.exit(1)
    print(f"{len(names)} names, each with a description")


if __name__ == "__main__":
    main()
