"""Prints each test Surefire skipped with the reason its assumption gave (Maven's summary counts them only)."""
import glob
import os
import sys
import xml.etree.ElementTree as ET

reports = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "lib", "target", "surefire-reports")
for path in sorted(glob.glob(os.path.join(reports, "TEST-*.xml"))):
    for case in ET.parse(path).getroot().iter("testcase"):
        skipped = case.find("skipped")
        if skipped is not None:
            cls = case.get("classname", "?").rsplit(".", 1)[-1]
            # Surefire puts JUnit's assumption text in the element's body, not always in a message attribute.
            reason = skipped.get("message") or (skipped.text or "").strip().split("\n", 1)[0]
            reason = reason.split("Assumption failed: ", 1)[-1] or "no reason given"
            print(f"skipped {cls}.{case.get('name')}: {reason}", file=sys.stderr)
