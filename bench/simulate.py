"""How fast `rca simulate` writes a suite.

1. One hour of the shop topology (12 services, 13 pods) at 20 requests/s, no faults, through the
   direct OTLP/JSON encoder (the default for files): seconds, spans/s.
2. The same records for a short stretch through the OpenTelemetry SDK path (--via-sdk) and the
   direct encoder, measured in this run: the ratio SDK / direct.

Usage: python bench/simulate.py [--minutes 60] [--rate 20] [--sdk-minutes 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from rca.simulate import run_suite


def timed(**kw):
    with tempfile.TemporaryDirectory() as d:
        began = time.perf_counter()
        res = run_suite("shop", 0, 1, Path(d), **kw)
        secs = time.perf_counter() - began
        size = sum(p.stat().st_size for p in Path(d).iterdir())
    return secs, res.counts, size


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=60)
    ap.add_argument("--rate", type=float, default=20)
    ap.add_argument("--sdk-minutes", type=float, default=3)
    a = ap.parse_args()
    secs, counts, size = timed(rate=a.rate, baseline_s=int(a.minutes * 60))
    n = counts["traces"]["items"]
    print(f"shop, {a.minutes:g} min at {a.rate:g} req/s, direct encoder: {secs:.1f} s "
          f"({n} spans, {counts['logs']['items']} logs, {counts['metrics']['items']} metric points, "
          f"{size / 2**20:.0f} MiB gz; {n / secs:,.0f} spans/s; {a.minutes * 60 / secs:.0f}x real time)")
    short = int(a.sdk_minutes * 60)
    d_secs, d_counts, _ = timed(rate=a.rate, baseline_s=short)
    s_secs, s_counts, _ = timed(rate=a.rate, baseline_s=short, via_sdk=True)
    assert d_counts == s_counts
    print(f"{a.sdk_minutes:g} min: direct {d_secs:.2f} s, via OpenTelemetry SDK {s_secs:.2f} s "
          f"(SDK / direct = {s_secs / d_secs:.1f}x)")


if __name__ == "__main__":
    main()
