"""Evidence a person can click and check, for a service suspected in a window."""

from __future__ import annotations

import re
from urllib.parse import urlencode

from rca.anomaly.invariants import parse_key
from rca.model import Evidence

ERRORISH = re.compile(r"error|exception|fail|fatal|refused|timeout|timed out|denied|panic", re.I)


def clip(text: str, limit: int) -> str:
    """``text`` cut to about ``limit`` characters at a space, with an ellipsis when cut."""
    if len(text) <= limit:
        return text
    cut = text.rfind(" ", limit // 2, limit)
    return text[:cut if cut > 0 else limit].rstrip() + " …"


def _fmt_ms(ns: float) -> str:
    return f"{ns / 1e6:.1f} ms"


def _share(p: float) -> str:
    return f"{100 * p:.1f}%"


def span_link(trace_id: str, span_id: str) -> str:
    return f"/api/v1/traces/{trace_id}#span-{span_id}"


def window_evidence(service: str, sig, tel, start_ns: int, end_ns: int, templates=None
                    ) -> tuple[list[Evidence], str | None, bool, list[str]]:
    """(evidence, operation, error-like templates involved, short phrases for the summary)."""
    evidence: list[Evidence] = []
    bits: list[str] = []
    operation = None
    error_templates = False
    window = {"start": int(start_ns), "end": int(end_ns)}

    mix = sig.details.get("log_mix")
    if mix is not None and service in mix.index and mix.loc[service, "score"] > 0:
        row = mix.loc[service]
        shown = []
        if row["up_z"] >= 3:  # what appeared or grew first: a new error line says more than a quieter normal one
            shown.append((row["up_key"], row["up_z"], row["up_w_share"], row["up_b_share"]))
        if row["top_key"] != row["up_key"]:
            shown.append((row["top_key"], row["top_z"], row["w_share"], row["b_share"]))
        for key, z, w_share, b_share in shown[:2]:
            tid = int(key)
            text = templates.template_text(tid) if templates is not None else f"template {tid}"
            sev = tel.logs.loc[(tel.logs["service"] == service) & (tel.logs["template_id"] == tid), "severity_number"]
            is_error = bool(ERRORISH.search(text)) or (len(sev) > 0 and float((sev >= 17).mean()) > 0.5)
            error_templates |= is_error and z > 0
            direction = "rose to" if z > 0 else "fell to"
            detail = (f"log template \"{clip(text, 160)}\" {direction} {_share(w_share)} of {service}'s log lines "
                      f"(baseline {_share(b_share)}); mix shift {row['score']:.1f} robust SDs beyond {service}'s usual "
                      f"variation")
            # a template that vanished has no lines in the window: link to where it used to appear
            scope = window if z > 0 else {}
            evidence.append(Evidence("log_template", {"service": service, "template_id": tid, "template": text},
                                     detail, "/api/v1/logs?" + urlencode({"service": service, "template_id": tid,
                                                                          **scope})))
            bits.append(f"log lines like \"{clip(text, 120)}\" {'appeared or grew' if z > 0 else 'vanished or shrank'}")
            example = tel.logs[(tel.logs["service"] == service) & (tel.logs["template_id"] == tid)
                               & (tel.logs["time_ns"] >= start_ns) & (tel.logs["time_ns"] < end_ns)
                               & (tel.logs["trace_id"] != "")].head(1)
            for _, lg in example.iterrows():
                evidence.append(Evidence("log", {"trace_id": lg["trace_id"], "span_id": lg["span_id"],
                                                 "template_id": tid},
                                         f"example log line of that template in trace {lg['trace_id']}",
                                         span_link(lg["trace_id"], lg["span_id"])))

    broken = sig.details.get("broken_invariants")
    if broken is not None and service in broken.index and broken.loc[service, "score"] >= 6:
        evidence += _invariant_evidence(service, broken.loc[service], sig.details.get("invariant_index"), templates,
                                        window, bits)

    ops = sig.details.get("op_mix")
    if ops is not None and service in ops.index and ops.loc[service, "score"] >= 3:
        row = ops.loc[service]
        up = row["up_z"] >= 3
        op = str(row["up_key"] if up else row["top_key"])
        operation = op.replace(" [error]", "")
        direction = "rose to" if up or row["top_z"] > 0 else "fell to"
        share, base = (row["up_w_share"], row["up_b_share"]) if up else (row["w_share"], row["b_share"])
        evidence.append(Evidence("span", {"service": service, "operation": op},
                                 f"operation {op} {direction} {_share(share)} of {service}'s spans "
                                 f"(baseline {_share(base)})",
                                 "/api/v1/traces?" + urlencode({"service": service, **window})))
        if op.endswith("[error]"):
            bits.append(f"{operation} calls fail more often")

    scored = sig.details.get("scored")
    if scored is not None and not scored.empty:
        mine = scored[(scored["service"] == service) & scored["anomalous"] & (scored["self_z"] >= 2.0)]
        if len(mine):
            top = mine.nsmallest(3, "score")
            operation = operation or str(mine["name"].mode().iloc[0])
            for _, sp in top.iterrows():
                evidence.append(Evidence(
                    "span", {"trace_id": sp["trace_id"], "span_id": sp["span_id"], "operation": sp["name"]},
                    f"{sp['name']} took {_fmt_ms(sp['duration_ns'])}, of which {_fmt_ms(sp['self_ns'])} in its own "
                    f"code ({sp['self_z']:.1f} robust SDs above its usual self time)",
                    span_link(sp["trace_id"], sp["span_id"])))
            bits.append(f"{len(mine)} spans spent unusual time in their own code")
        errs = scored[(scored["service"] == service) & (scored["error"] == 1)]
        if len(errs):
            sp = errs.iloc[0]
            evidence.append(Evidence("trace", {"trace_id": sp["trace_id"]},
                                     f"{len(errs)} failing {service} spans in the window, e.g. {sp['name']}",
                                     f"/api/v1/traces/{sp['trace_id']}"))

    shifts = sig.details.get("metric_shifts")
    if shifts is not None and not shifts.empty:
        mine = shifts[shifts["service"] == service].nlargest(2, "z")
        for _, m in mine.iterrows():
            if m["z"] < 3:
                continue
            evidence.append(Evidence(
                "metric", {"service": service, "pod": m["pod"], "name": m["name"]},
                f"{m['name']} on {m['pod'] or service}: median {m['w_median']:.4g} in the window vs "
                f"{m['b_median']:.4g} before ({m['z']:.1f} robust SDs)",
                "/api/v1/metrics?" + urlencode({"service": service, "name": m["name"], **window})))
            bits.append(f"{m['name']} {m['w_median']:.3g} vs {m['b_median']:.3g}")
    return evidence, operation, error_templates, bits


def _event_text(key: str, templates) -> tuple[str, int | None]:
    """(what a person reads, template id or None) for an invariant's event key."""
    kind, value = parse_key(key)
    if kind == "span":
        return f"{value} (span)", None
    tid = int(value)
    return (templates.template_text(tid) if templates is not None else f"template {tid}"), tid


def _invariant_evidence(service: str, row, index, templates, window: dict, bits: list[str]) -> list[Evidence]:
    """A broken log invariant: two events a request normally has equally often, and requests that do not."""
    (ta, ida), (tb, idb) = _event_text(row["a"], templates), _event_text(row["b"], templates)
    detail = (f"in {int(row['broken'])} of {int(row['requests'])} requests in the window, {service} had "
              f"\"{clip(ta, 120)}\" and \"{clip(tb, 120)}\" a different number of times; they normally come in equal numbers "
              f"(differing in {_share(row['base_rate'])} of {int(row['base_requests'])} other requests), so a code "
              f"path between them is being cut short or skipped")
    tid = ida if ida is not None else idb
    ref = {"service": service, "events": [str(row["a"]), str(row["b"])]}
    if tid is not None:
        ref.update(template_id=tid, template=ta if ida is not None else tb)
        link = "/api/v1/logs?" + urlencode({"service": service, "template_id": tid, **window})
    else:
        link = "/api/v1/traces?" + urlencode({"service": service, **window})
    out = [Evidence("log_template", ref, detail, link)]
    bits.append(f"requests have \"{clip(ta, 100)}\" without the matching \"{clip(tb, 100)}\"")
    for trace_id in (index.broken_requests(service, row["a"], row["b"], window["start"], window["end"], limit=2)
                     if index is not None else []):
        out.append(Evidence("trace", {"trace_id": trace_id},
                            f"a request where the two do not match up: trace {trace_id}", f"/api/v1/traces/{trace_id}"))
    return out
