#!/usr/bin/env python3
"""Rewrites the cross-field rules of charts/trustgate/values.schema.json.

JSON Schema cannot compare two values, so "webhook.budget below webhook.timeoutSeconds" and
"preStopSleepSeconds below terminationGracePeriodSeconds" are spelled out as one if/then rule per
possible value (timeoutSeconds is 1..30, preStopSleepSeconds at most 60). Every rule carries a
`$comment` starting with "cross-field:"; this script replaces exactly those.

    python3 scripts/schema-rules.py           rewrite the schema
    python3 scripts/schema-rules.py --check   exit 1 if the schema is not what it would write
"""
import json
import sys
from collections import OrderedDict

PATH = "charts/trustgate/values.schema.json"


def rules():
    out = []
    for t in range(1, 31):
        ints = "|".join(str(i) for i in range(t))
        out.append({
            "$comment": f"cross-field: webhook.budget must be below webhook.timeoutSeconds ({t})",
            "if": {"properties": {"webhook": {"properties": {"timeoutSeconds": {"const": t}},
                                              "required": ["timeoutSeconds"]}},
                   "required": ["webhook"]},
            "then": {"properties": {"webhook": {"properties": {"budget": {
                "pattern": f"^(0*({ints})(\\.[0-9]+)?s)?$",
                "description": f"below timeoutSeconds {t}"}}}}},
        })
    for g in range(0, 61):
        allowed = {"const": 0} if g == 0 else {"anyOf": [{"const": 0}, {"maximum": g - 1}]}
        out.append({
            "$comment": f"cross-field: preStopSleepSeconds must be below terminationGracePeriodSeconds ({g})",
            "if": {"properties": {"terminationGracePeriodSeconds": {"const": g}},
                   "required": ["terminationGracePeriodSeconds"]},
            "then": {"properties": {"preStopSleepSeconds": allowed}},
        })
    return out


def render(schema):
    kept = [r for r in schema.get("allOf", [])
            if not str(r.get("$comment", "")).startswith(("cross-field:", "webhook.budget must", "preStopSleepSeconds must"))]
    schema["allOf"] = kept + rules()
    return json.dumps(schema, indent=2) + "\n"


def main():
    current = open(PATH).read()
    wanted = render(json.loads(current, object_pairs_hook=OrderedDict))
    if "--check" in sys.argv[1:]:
        if current != wanted:
            sys.exit(f"{PATH}: cross-field rules are stale: run python3 scripts/schema-rules.py")
        print(f"{PATH}: cross-field rules up to date")
        return
    open(PATH, "w").write(wanted)


main()
