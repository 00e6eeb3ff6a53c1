#!/usr/bin/python3
"""Checks that each FILE (a /metrics scrape, Prometheus text 0.0.4) also
reads as OpenMetrics with the strict parser (review 12.4): parsed by
prometheus_client's text parser, written back as OpenMetrics and parsed by
prometheus_client.openmetrics.parser, which refuses two families that claim
one name ("Clashing name": a gauge X next to a counter X_total, a histogram
X next to a gauge X_count, ...). Prints each file's families and exits 0, or
prints what is wrong and exits 1 (2: prometheus_client is not installed).
Usage: om_strict.py FILE..."""
import sys

try:
    from prometheus_client.openmetrics.exposition import generate_latest
    from prometheus_client.openmetrics.parser import \
        text_string_to_metric_families as om_families
    from prometheus_client.parser import text_string_to_metric_families as families
except ImportError:
    print("python3-prometheus-client is not installed")
    sys.exit(2)


class Families:
    def __init__(self, fams):
        self.fams = fams

    def collect(self):
        return self.fams


def check(path):
    text = open(path, encoding="utf-8").read()
    fams = list(families(text))
    if not fams:
        return "no families"
    names = [f.name for f in fams]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        return "families of one name: " + ", ".join(dup)
    om = generate_latest(Families(fams)).decode("utf-8")
    try:
        n = len(list(om_families(om)))
    except ValueError as e:
        return "the OpenMetrics parser refuses it: %s" % e
    if n != len(fams):
        return "%d families, %d as OpenMetrics" % (len(fams), n)
    print("%s: %d families, OpenMetrics-strict names" % (path, n))
    return None


def main():
    bad = 0
    for path in sys.argv[1:]:
        why = check(path)
        if why:
            print("%s: %s" % (path, why))
            bad = 1
    sys.exit(bad)


main()
