"""check_names.py DASHBOARD ALERTS < exposition

Every metric name in the dashboard's PromQL and in the alert rules is a
family of the exposition (a histogram's _bucket/_sum/_count included), or
Prometheus's own `up`; the dashboard uses every stable family at least
once... except those only alerts need; SQL panels name the §7 objects.
"""
import json
import re
import sys

import yaml

exposition = sys.stdin.read()
families = {}
for line in exposition.splitlines():
    m = re.match(r"# TYPE (\S+) (\S+)$", line)
    if m:
        families[m.group(1)] = m.group(2)
if len(families) < 19:
    sys.exit(f"only {len(families)} families in the exposition")
exported = set()
for name, kind in families.items():
    exported.add(name)
    if kind == "histogram":
        exported.update(name + s for s in ("_bucket", "_sum", "_count"))

# presence_fleet_*: the fleet gauges (issue 24). presence_rollup_lag_seconds
# (issue 22's, named by an alert) is left to that issue to add here.
NAME = re.compile(
    r"\b((?:presence_ingest|presence_fleet|process)_[a-z0-9_]+|up)\b(?!\s*\()")


def names(expr):
    # Drop label matchers and strings: {job=~"$job"} holds no metric name.
    expr = re.sub(r'"[^"]*"', '""', expr)
    return set(NAME.findall(expr))


errors = []
with open(sys.argv[1]) as f:
    dash = json.load(f)
panels = []
for p in dash["panels"]:
    panels.append(p)
    panels.extend(p.get("panels", []))
used = set()
sql = []
for p in panels:
    for t in p.get("targets", []):
        if "expr" in t:
            found = names(t["expr"])
            if not found:
                errors.append(f"panel '{p['title']}': no metric in {t['expr']}")
            for n in found:
                used.add(n)
                if n not in exported:
                    errors.append(f"panel '{p['title']}': {n} is not exported")
        if "rawSql" in t:
            sql.append(t["rawSql"])
for v in dash.get("templating", {}).get("list", []):
    for n in names(v.get("query", "")):
        if n not in exported:
            errors.append(f"variable {v['name']}: {n} is not exported")

with open(sys.argv[2]) as f:
    rules = yaml.safe_load(f)
n_rules = 0
for g in rules["groups"]:
    for r in g["rules"]:
        n_rules += 1
        for n in names(r["expr"]):
            if n != "up" and n not in exported:
                errors.append(f"alert {r['alert']}: {n} is not exported")

# The service metrics a dashboard must show (the list).
for want in ("presence_ingest_presences_total", "presence_ingest_rejects_total",
             "presence_ingest_consumer_lag_messages",
             "presence_ingest_event_lag_seconds_bucket",
             "presence_ingest_batch_write_seconds_bucket",
             "presence_ingest_db_errors_total", "presence_fleet_assets",
             "presence_fleet_status_changes_total"):
    if want not in used:
        errors.append(f"the dashboard does not show {want}")
alltext = "\n".join(sql)
for obj in ("asset_status", "connectivity_sessions", "reason_counts(",
            "fleet_timeline(", "asset_availability("):
    if obj not in alltext:
        errors.append(f"no PostgreSQL panel reads {obj}")
for q in sql:
    for table in re.findall(r"\bFROM\s+([a-z_]+)", q, re.I):
        if table not in ("asset_status", "connectivity_sessions",
                         "reason_counts", "presences", "presence_rejects",
                         "fleet_timeline", "asset_availability",
                         "asset_outages", "fleet_availability"):
            errors.append(f"SQL panel reads {table}, not a CONTRACT name")
if errors:
    sys.exit("\n".join(errors))
print(f"ok: {len(panels)} panels, {len(used)} metric names, {n_rules} alert "
      f"rules, {len(sql)} SQL panels; all exported")
