"""Runs the W3C Feed Validation Service's code on feeds saved as files.

Usage: feedvalidator.py VALIDATOR_SRC FILE=URL...
Prints one JSON object: {file: [{"level", "type", "line", "column", "element", "text"}]}
for the errors and warnings the online service would show.
"""
import json
import sys

sys.path.insert(0, sys.argv[1])

import feedvalidator  # noqa: E402
from feedvalidator import compatibility, logging  # noqa: E402
from feedvalidator.formatter.text_plain import Formatter  # noqa: E402

out = {}
for arg in sys.argv[2:]:
    path, url = arg.split("=", 1)
    with open(path, "rb") as f:
        data = f.read()
    events = feedvalidator.validateString(data, firstOccurrenceOnly=1, base=url)["loggedEvents"]
    events = compatibility.AA(events)
    found = []
    for e in events:
        if isinstance(e, logging.Error):
            level = "error"
        elif isinstance(e, logging.Warning):
            level = "warning"
        else:
            continue
        text = " ".join(str(x) for x in Formatter([e]))
        found.append({
            "level": level,
            "type": e.__class__.__name__,
            "line": e.params.get("line"),
            "column": e.params.get("column"),
            "element": e.params.get("element"),
            "text": text,
        })
    out[path] = found
json.dump(out, sys.stdout)
