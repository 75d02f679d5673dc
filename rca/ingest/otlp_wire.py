"""Compiled (numba) walk of an OTLP ExportTraceServiceRequest's protobuf wire format into span columns.

``count_request`` counts resources, scopes and spans; ``fill_request`` then reads every span into
preallocated arrays and byte buffers that become Arrow string columns as they are: ids as lowercase
hex, name and status message as UTF-8, attributes and events already rendered as the JSON text that
``rca.ingest.batch.to_json`` writes (``rca.ingest.wire_json``). Nothing here makes a Python object per
span. Parsing follows protobuf (upb) exactly (``rca.ingest.wire_format``): last value wins for singular
fields, a known field with another wire type is an unknown field, unknown fields (groups included, 100
levels deep at most) are skipped, strings must be valid UTF-8, and any damage is an error code with the
byte position (``ERRORS``).

What the kernels leave to Python: the few resources and scopes (``*_rng``: byte ranges), doubles
(the first run collects their bits, Python formats them as ``repr`` does, a second run splices the
texts in; ``dtab``), and rare shapes (key/value lists, nested arrays, a field twice in one KeyValue or
AnyValue, a key twice in one event): the span is flagged ``slow`` and its attributes/events are left
empty for Python to render, then ``splice_texts`` puts them in place.

Import this module only where it is used (it imports numba); the kernels compile on their first call,
or load from numba's cache, which holds only these kernels, each with its helpers compiled in (the
helpers are not cached on their own); importing this module empties that cache when a helper module
changed. ``warm_up`` compiles or loads the kernels ahead of the first request.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from numba import njit

from rca.ingest import wire_format, wire_json
from rca.ingest.wire_format import ERRORS  # noqa: F401  (read by otlp_proto with the codes below)
from rca.ingest.wire_format import (E_TOO_LARGE, E_TRUNCATED, E_UTF8, copy_bytes, grown, is_utf8, ptr, put_hex,
                                    read_fixed64, read_size, read_tag, read_varint, skip_field)
from rca.ingest.wire_json import TO_PYTHON, put_event, put_member, scan_event

# ints rows of fill_request
START, END, DURATION, KIND, CODE, BAD, SLOW, SPAN_LO, SPAN_HI, RESOURCE, SCOPE = range(11)
N_INTS = 11
# offs rows / buffers of fill_request
TRACE_ID, SPAN_ID, PARENT_ID, NAME, STATUS_MESSAGE, ATTRIBUTES, EVENTS = range(7)
# BAD bits, in the order the checks are reported
BAD_TRACE_ID, BAD_SPAN_ID, BAD_PARENT_ID, BAD_TIME, BAD_ORDER, BAD_KIND, BAD_CODE, BAD_ZERO_ID = (
    1 << i for i in range(8))
_INT32_MAX = 2**31 - 1


@njit(nogil=True, cache=True)
def count_request(b):
    """-> (n_resources, n_scopes, n_spans, err, err_pos) of an ExportTraceServiceRequest."""
    bp = ptr(b)
    n_res, n_scope, n_span = 0, 0, 0
    end = b.size
    p = 0
    while p < end:
        at = p
        f, wt, p = read_tag(bp, p, end)
        if p >= 0 and f == 1 and wt == 2:  # ResourceSpans
            rlo, rhi = read_size(bp, p, end)
            p = rlo
            n_res += 1
            while p >= 0 and p < rhi:
                at = p
                f, wt, p = read_tag(bp, p, rhi)
                if p >= 0 and f == 2 and wt == 2:  # ScopeSpans
                    slo, shi = read_size(bp, p, rhi)
                    p = slo
                    n_scope += 1
                    while p >= 0 and p < shi:
                        at = p
                        f, wt, p = read_tag(bp, p, shi)
                        if p >= 0 and f == 2 and wt == 2:  # Span
                            x, p = read_size(bp, p, shi)
                            n_span += 1
                            if x < 0:
                                p = x
                        elif p >= 0:
                            p = skip_field(bp, p, shi, f, wt, 2)
                elif p >= 0:
                    p = skip_field(bp, p, rhi, f, wt, 1)
        elif p >= 0:
            p = skip_field(bp, p, end, f, wt, 0)
        if p < 0:
            return n_res, n_scope, n_span, -p, at
    return n_res, n_scope, n_span, 0, 0


@njit(nogil=True)
def _room(lo, hi):
    """The most bytes one span (body ``lo:hi``) adds to the id, attribute and event buffers: a KeyValue
    of n bytes with its tag and length renders to at most 6 n; an event to at most 6 n + 64."""
    n = hi - lo
    return 2 * n, 6 * n + 2, 38 * n + 2


@njit(nogil=True)
def _read_spans(b, i, ints, offs, tbuf, sbuf, pbuf, nbuf, mbuf, abuf, ebuf, pos, dbits, dtab, dtab_off, have_dtab):
    """Read spans ``i``.. (located in ``ints``) into the buffers, positions in ``pos`` (and the doubles
    seen in ``pos[7]``). -> (the span where it stopped, err, err_pos); it stops early, at a span
    start, when a buffer lacks room for it (``_room``)."""
    n = ints.shape[1]
    tpos, spos, ppos, npos, mpos, apos, epos, nd = pos[0], pos[1], pos[2], pos[3], pos[4], pos[5], pos[6], pos[7]
    at = 0
    bp, dp, dtp, dop = ptr(b), ptr(dbits), ptr(dtab), ptr(dtab_off)
    tp, sp, pp, ap, ep = ptr(tbuf), ptr(sbuf), ptr(pbuf), ptr(abuf), ptr(ebuf)
    np_, mp = ptr(nbuf), ptr(mbuf)
    while i < n:
        lo, hi = ints[SPAN_LO, i], ints[SPAN_HI, i]
        ids, attrs, events = _room(lo, hi)
        if (tpos + ids > tbuf.size or spos + ids > sbuf.size or ppos + ids > pbuf.size
                or apos + attrs > abuf.size or epos + events > ebuf.size):
            break
        tlo = thi = slo_ = shi_ = plo = phi = nlo = nhi = np.int64(0)
        stlo, sthi = np.int64(-1), np.int64(0)
        kind, t0, t1 = np.int64(0), np.int64(0), np.int64(0)
        slow = False
        a0, e0, n_ev = apos, epos, 0
        abuf[apos] = 123
        apos += 1
        q = lo
        while q < hi:
            at = q
            f, wt, q = read_tag(bp, q, hi)
            if q < 0:
                break
            if wt == 2 and (f <= 2 or f == 4 or f == 5 or f == 9 or f == 11 or f == 15):
                x, y = read_size(bp, q, hi)
                if x < 0:
                    q = x
                    break
                q = y
                if f == 1:
                    tlo, thi = x, y
                elif f == 2:
                    slo_, shi_ = x, y
                elif f == 4:
                    plo, phi = x, y
                elif f == 5:
                    nlo, nhi = x, y
                    if not is_utf8(bp, x, y):
                        q = -E_UTF8
                elif f == 15:
                    stlo, sthi = x, y
                elif slow:
                    pass  # Python renders (and checks) this span's attributes and events
                elif f == 9:
                    if apos > a0 + 1:
                        abuf[apos] = 44
                        apos += 1
                    apos, nd, st, _, _ = put_member(bp, x, y, 0, ap, apos, dp, nd, dop, dtp,
                                                     have_dtab)
                    q = st if st < 0 else q
                    slow = st == TO_PYTHON
                else:  # f == 11: an event
                    et, enlo, enhi, n_attr, st = scan_event(bp, x, y)
                    if st == 0:
                        ebuf[epos] = 44 if n_ev else 91
                        n_ev += 1
                        epos, nd, st = put_event(bp, x, y, et, enlo, enhi, n_attr, ep, epos + 1, dp,
                                                  nd, dop, dtp, have_dtab)
                    q = st if st < 0 else q
                    slow = st == TO_PYTHON
            elif f == 6 and wt == 0:
                kind, q = read_varint(bp, q, hi)
            elif (f == 7 or f == 8) and wt == 1:
                if q + 8 > hi:
                    q = -E_TRUNCATED
                elif f == 7:
                    t0 = read_fixed64(bp, q)
                else:
                    t1 = read_fixed64(bp, q)
                q = q + 8 if q >= 0 else q
            else:
                q = skip_field(bp, q, hi, f, wt, 3)
            if q < 0:
                break
        # status (the last one): message = 2, code = 3
        code, mlo, mhi = np.int64(0), np.int64(0), np.int64(0)
        if q >= 0 and stlo >= 0:
            q = stlo
            while q < sthi:
                at = q
                f, wt, q = read_tag(bp, q, sthi)
                if q >= 0 and f == 2 and wt == 2:
                    mlo, mhi = read_size(bp, q, sthi)
                    q = mhi if mlo >= 0 else mlo
                    if q >= 0 and not is_utf8(bp, mlo, mhi):
                        q = -E_UTF8
                elif q >= 0 and f == 3 and wt == 0:
                    code, q = read_varint(bp, q, sthi)
                elif q >= 0:
                    q = skip_field(bp, q, sthi, f, wt, 0)
                if q < 0:
                    break
        if q < 0:
            return i, -q, at
        # ids, name, status message
        if phi - plo == 8:
            zero = True
            for k in range(plo, phi):
                zero = zero and b[k] == 0
            if zero:
                phi = plo
        tpos = put_hex(bp, tlo, thi, tp, tpos)
        spos = put_hex(bp, slo_, shi_, sp, spos)
        ppos = put_hex(bp, plo, phi, pp, ppos)
        copy_bytes(np_, npos, bp, nlo, nhi - nlo)  # names and messages are parts of the body: no room to check
        npos += nhi - nlo
        copy_bytes(mp, mpos, bp, mlo, mhi - mlo)
        mpos += mhi - mlo
        # attributes and events
        if slow:
            apos, epos = a0, e0
        else:
            abuf[apos] = 125
            apos += 1
            if n_ev == 0:
                ebuf[epos] = 91
                epos += 1
            ebuf[epos] = 93
            epos += 1
        if max(tpos, spos, ppos, npos, mpos, apos, epos) > _INT32_MAX:
            return i, E_TOO_LARGE, lo
        offs[TRACE_ID, i + 1], offs[SPAN_ID, i + 1], offs[PARENT_ID, i + 1] = tpos, spos, ppos
        offs[NAME, i + 1], offs[STATUS_MESSAGE, i + 1] = npos, mpos
        offs[ATTRIBUTES, i + 1], offs[EVENTS, i + 1] = apos, epos
        # checks (rca.ingest.otlp_proto reports them)
        kind = (kind & 0xFFFFFFFF) - ((kind & 0x80000000) << 1)  # int32, as protobuf reads it
        code = (code & 0xFFFFFFFF) - ((code & 0x80000000) << 1)
        bad = 0
        if thi - tlo != 16:
            bad |= BAD_TRACE_ID
        if shi_ - slo_ != 8:
            bad |= BAD_SPAN_ID
        if phi - plo != 0 and phi - plo != 8:
            bad |= BAD_PARENT_ID
        if t0 < 0 or t1 < 0:
            bad |= BAD_TIME
        if np.uint64(t1) < np.uint64(t0):
            bad |= BAD_ORDER
        if kind < 0 or kind > 5:
            bad |= BAD_KIND
        if code < 0 or code > 2:
            bad |= BAD_CODE
        zero_t, zero_s = thi - tlo == 16, shi_ - slo_ == 8
        for k in range(tlo, thi):
            zero_t = zero_t and b[k] == 0
        for k in range(slo_, shi_):
            zero_s = zero_s and b[k] == 0
        if zero_t or zero_s:
            bad |= BAD_ZERO_ID
        ints[START, i], ints[END, i], ints[DURATION, i] = t0, t1, t1 - t0
        ints[KIND, i] = 0 if bad else kind
        ints[CODE, i] = 0 if bad else code
        ints[BAD, i], ints[SLOW, i] = bad, slow
        i += 1
        pos[0], pos[1], pos[2], pos[3], pos[4], pos[5], pos[6], pos[7] = tpos, spos, ppos, npos, mpos, apos, epos, nd
    return i, 0, at


@njit(nogil=True, cache=True)
def fill_request(b, n_res, n_scope, n, dtab, dtab_off, have_dtab):
    """Read every span of a request that ``count_request`` found well formed and counted.

    -> (ints [N_INTS, n] int64, offs [7, n + 1] int32, bufs (7 uint8 arrays, the rows of offs),
    res_rng [n_res, 2], scope_rng [n_scope, 3] (lo, hi, n_spans; lo -1: absent), dbits, err, err_pos).
    """
    ints = np.zeros((N_INTS, n), np.int64)
    res_rng = np.full((n_res, 2), -1, np.int64)
    scope_rng = np.full((n_scope, 3), -1, np.int64)
    i, r, s = 0, -1, -1
    end = b.size
    bp = ptr(b)
    p = 0
    while p < end:  # ExportTraceServiceRequest: resource_spans = 1
        f, wt, p = read_tag(bp, p, end)
        if not (f == 1 and wt == 2):
            p = skip_field(bp, p, end, f, wt, 0)
            continue
        rlo, rhi = read_size(bp, p, end)
        r += 1
        p = rlo
        while p < rhi:  # ResourceSpans: resource = 1, scope_spans = 2
            f, wt, p = read_tag(bp, p, rhi)
            if not ((f == 1 or f == 2) and wt == 2):
                p = skip_field(bp, p, rhi, f, wt, 1)
                continue
            slo, shi = read_size(bp, p, rhi)
            p = shi
            if f == 1:
                res_rng[r, 0], res_rng[r, 1] = slo, shi
                continue
            s += 1
            scope_rng[s, 2] = 0
            ps = slo
            while ps < shi:  # ScopeSpans: scope = 1, spans = 2
                f, wt, ps = read_tag(bp, ps, shi)
                if not ((f == 1 or f == 2) and wt == 2):
                    ps = skip_field(bp, ps, shi, f, wt, 2)
                    continue
                lo, hi = read_size(bp, ps, shi)
                ps = hi
                if f == 1:
                    scope_rng[s, 0], scope_rng[s, 1] = lo, hi
                else:
                    scope_rng[s, 2] += 1
                    ints[SPAN_LO, i], ints[SPAN_HI, i], ints[RESOURCE, i], ints[SCOPE, i] = lo, hi, r, s
                    i += 1
    offs = np.zeros((7, n + 1), np.int32)
    bufs = [np.empty(32 * n, np.uint8), np.empty(16 * n, np.uint8), np.empty(16 * n, np.uint8),
            np.empty(b.size, np.uint8), np.empty(b.size, np.uint8),  # names, messages: parts of the body
            np.empty(2 * b.size + 64, np.uint8), np.empty(b.size + 64, np.uint8)]  # pages never written cost nothing
    pos = np.zeros(8, np.int64)
    dbits = np.empty(b.size // 9 + 1, np.int64)
    i, err, at = 0, 0, 0
    while True:
        i, err, at = _read_spans(b, i, ints, offs, bufs[0], bufs[1], bufs[2], bufs[3], bufs[4], bufs[5], bufs[6],
                                 pos, dbits, dtab, dtab_off, have_dtab)
        if i == n or err:
            break
        ids, attrs, events = _room(ints[SPAN_LO, i], ints[SPAN_HI, i])
        for k, need in ((0, ids), (1, ids), (2, ids), (5, attrs), (6, events)):
            if pos[k] + need > bufs[k].size:
                bufs[k] = grown(bufs[k], pos[k], need)
    out = (bufs[0][:pos[0]], bufs[1][:pos[1]], bufs[2][:pos[2]], bufs[3][:pos[3]], bufs[4][:pos[4]],
           bufs[5][:pos[5]], bufs[6][:pos[6]])
    return ints, offs, out, res_rng, scope_rng, dbits[:pos[7]], err, at


@njit(nogil=True, cache=True)
def splice_texts(data, offs, rows, texts, text_offs):
    """Put ``texts`` into a string column at ``rows`` (ascending), where its texts are empty.
    -> (data, offs); offs empty when the result would not fit int32 offsets."""
    n = offs.size - 1
    total = np.int64(offs[n]) + np.int64(text_offs[rows.size])
    if total > _INT32_MAX:
        return data, offs[:0]
    out = np.empty(total, np.uint8)
    new_offs = np.empty(n + 1, np.int32)
    new_offs[0] = 0
    o, j = 0, 0
    for i in range(n):
        if j < rows.size and rows[j] == i:
            x, y = text_offs[j], text_offs[j + 1]
            copy_bytes(ptr(out), o, ptr(texts), x, y - x)
            j += 1
        else:
            x, y = offs[i], offs[i + 1]
            copy_bytes(ptr(out), o, ptr(data), x, y - x)
        o += y - x
        new_offs[i + 1] = o
    return out, new_offs


# ---------------------------------------------------------------- numba's cache
def _helpers_digest() -> int:
    """A digest of the helper modules' sources (wire_format, wire_json), as an int64."""
    h = hashlib.sha256()
    for module in (wire_format, wire_json):
        h.update(Path(module.__file__).read_bytes())
    return int.from_bytes(h.digest()[:8], "little", signed=True)


_HELPERS_DIGEST = _helpers_digest()


@njit(cache=True)
def _cached_helpers_digest():
    """The helpers' digest when the kernels were cached: numba freezes a global's value into the code."""
    return _HELPERS_DIGEST


def _drop_stale_kernels() -> None:
    """numba checks a cached kernel against its own file only, not against the helpers compiled into it
    (numba issue 1833): after a helper module changed, empty the kernels' caches (``recompile`` with no
    signature loaded does only that) so they compile afresh on their next call."""
    if _cached_helpers_digest() != _HELPERS_DIGEST:
        for kernel in (count_request, fill_request, splice_texts, _cached_helpers_digest):
            kernel.recompile()


_drop_stale_kernels()


def warm_up() -> None:
    """Compile the kernels (or load them from numba's cache) by decoding a small request that takes
    every path: doubles, a span left to Python, an event. Call it once at a server's start so that
    the first request does not wait for the compiler."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    from rca.ingest.otlp_proto import decode_traces

    req = ExportTraceServiceRequest()
    spans = req.resource_spans.add().scope_spans.add().spans
    for i in range(2):
        sp = spans.add(trace_id=b"\x01" * 16, span_id=bytes([2, i]) * 4, name="warm-up", kind=2,
                       start_time_unix_nano=1, end_time_unix_nano=2)
        sp.attributes.add(key="ratio").value.double_value = 0.5
        sp.events.add(name="e").attributes.add(key="n").value.int_value = 1
        if i:
            sp.attributes.add(key="map").value.kvlist_value.values.add(key="k")
    decode_traces(req.SerializeToString())