"""Scrapes a weft metrics endpoint as Prometheus would, and prints what it read as JSON.

    scrape.py URL          -> {"status", "content_type", "families": {name: type},
                               "samples": {"name{label=value,...}": value}}
    scrape.py URL METHOD   -> {"status"} only (for the endpoint's refusals)

The text is parsed by the Prometheus project's own Python client (its OpenMetrics parser,
which refuses malformed exposition text), not by anything of weft's.
"""

import json
import sys
import urllib.error
import urllib.request

from prometheus_client.openmetrics.parser import text_string_to_metric_families


def main():
    url = sys.argv[1]
    method = sys.argv[2] if len(sys.argv) > 2 else "GET"
    req = urllib.request.Request(
        url,
        method=method,
        headers={"Accept": "application/openmetrics-text; version=1.0.0"},
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            status, ctype, body = r.status, r.headers.get("Content-Type"), r.read()
    except urllib.error.HTTPError as e:
        print(json.dumps({"status": e.code}))
        return
    if method != "GET":
        print(json.dumps({"status": status}))
        return
    families, samples = {}, {}
    for fam in text_string_to_metric_families(body.decode("utf-8")):
        families[fam.name] = fam.type
        for s in fam.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
            samples[f"{s.name}{{{labels}}}"] = s.value
    print(
        json.dumps(
            {
                "status": status,
                "content_type": ctype,
                "families": families,
                "samples": samples,
            }
        )
    )


if __name__ == "__main__":
    main()
