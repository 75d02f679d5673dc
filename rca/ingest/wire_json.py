"""OTLP AnyValue, KeyValue and Span.Event messages rendered as JSON, for the compiled decoder
(``rca.ingest.otlp_wire``).

The text is what ``rca.ingest.batch.to_json`` writes for the same values (compact separators,
``ensure_ascii=False``): strings escaped, bools and ints as literals, bytes as hex, arrays of scalars
as lists, an event as ``{"time_ns":..,"name":..,"attributes":{..}}``. Doubles are formatted by Python:
a first run collects their bits (``dbits``), a second one copies the texts from ``dtab``. A renderer's
status is 0, ``TO_PYTHON`` (a shape left to Python: key/value lists, nested arrays, a field twice in
one KeyValue or AnyValue, a key twice in one event) or ``-code`` (``wire_format.ERRORS``).

It imports numba: only modules that are themselves imported lazily may import it. Nothing here is
cached on its own: numba's cache holds it compiled into the kernels of ``otlp_wire``, which empties
that cache when this file changed.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from rca.ingest.wire_format import (E_TRUNCATED, E_UTF8, copy_bytes, is_utf8, ptr, put_hex, put_literal,
                                    put_signed, put_string, put_unsigned, read_fixed64, read_size, read_tag,
                                    read_varint, skip_field)

TO_PYTHON = 1  # status of a renderer: the value needs Python

_TIME_NS = np.frombuffer(b'{"time_ns":', np.uint8)
_NAME = np.frombuffer(b',"name":', np.uint8)
_ATTRIBUTES = np.frombuffer(b',"attributes":{', np.uint8)
_TRUE = np.frombuffer(b"true", np.uint8)
_FALSE = np.frombuffer(b"false", np.uint8)
_NULL = np.frombuffer(b"null", np.uint8)
_ANY_NONE, _ANY_STRING, _ANY_BOOL, _ANY_INT, _ANY_DOUBLE, _ANY_ARRAY, _ANY_KVLIST, _ANY_BYTES = range(8)
_ANY_WIRETYPE = (-1, 2, 0, 0, 1, 2, 2, 2)  # AnyValue field number -> its wire type


# ---------------------------------------------------------------- AnyValue / KeyValue
@njit(nogil=True)
def _scan_any(b, lo, hi, depth):
    """An AnyValue message -> (kind, a, c, status): string/bytes/array: byte range a..c; bool/int/double:
    bits in a. status: 0, TO_PYTHON (a oneof field twice), or -code."""
    kind, a, c, n = _ANY_NONE, np.int64(0), np.int64(0), 0
    p = lo
    while p < hi:
        f, wt, p = read_tag(b, p, hi)
        if p < 0:
            return kind, a, c, p
        if 1 <= f <= 7 and wt == _ANY_WIRETYPE[f]:
            n += 1
            kind = f
            if wt == 2:
                a, c = read_size(b, p, hi)
                p = a if a < 0 else c  # strings are checked for UTF-8 as they are written
            elif wt == 0:
                a, p = read_varint(b, p, hi)
            elif p + 8 <= hi:
                a = read_fixed64(b, p)
                p += 8
            else:
                p = -E_TRUNCATED
        else:
            p = skip_field(b, p, hi, f, wt, depth)
        if p < 0:
            return kind, a, c, p
    return kind, a, c, (TO_PYTHON if n > 1 else 0)


@njit(nogil=True)
def _put_scalar(b, kind, a, c, out, o, dbits, nd, dtab_off, dtab, have_dtab):
    """A scanned non-container AnyValue as JSON -> (o, nd). Doubles: collected into ``dbits`` on the
    first run (nothing written), copied from ``dtab`` on the second."""
    if kind == _ANY_STRING:
        o = put_string(b, a, c, out, o)
    elif kind == _ANY_BOOL:
        o = (put_literal(ptr(_TRUE), 4, out, o) if a != 0 else put_literal(ptr(_FALSE), 5, out, o))
    elif kind == _ANY_INT:
        o = put_signed(a, out, o)
    elif kind == _ANY_DOUBLE:
        if have_dtab:
            copy_bytes(out, o, dtab, dtab_off[nd], dtab_off[nd + 1] - dtab_off[nd])
            o += dtab_off[nd + 1] - dtab_off[nd]
        else:
            dbits[nd] = a
        nd += 1
    elif kind == _ANY_BYTES:
        out[o] = 34
        o = put_hex(b, a, c, out, o + 1)
        out[o] = 34
        o += 1
    else:
        o = put_literal(ptr(_NULL), _NULL.size, out, o)
    return o, nd


@njit(nogil=True)
def _put_value(b, lo, hi, depth, out, o, dbits, nd, dtab_off, dtab, have_dtab):
    """An AnyValue (scalar, or array of scalars) as JSON -> (o, nd, status)."""
    kind, a, c, status = _scan_any(b, lo, hi, depth)
    if status != 0 or kind == _ANY_KVLIST:
        return o, nd, (status if status != 0 else TO_PYTHON)
    if kind != _ANY_ARRAY:
        o, nd = _put_scalar(b, kind, a, c, out, o, dbits, nd, dtab_off, dtab, have_dtab)
        return o, nd, min(o, 0)
    out[o] = 91
    o += 1
    first = True
    p = a
    while p < c:  # ArrayValue: values = 1
        f, wt, p = read_tag(b, p, c)
        if p < 0:
            return o, nd, p
        if f == 1 and wt == 2:
            elo, ehi = read_size(b, p, c)
            if elo < 0:
                return o, nd, elo
            ekind, ea, ec, status = _scan_any(b, elo, ehi, depth + 2)
            if status != 0 or ekind == _ANY_ARRAY or ekind == _ANY_KVLIST:
                return o, nd, (status if status != 0 else TO_PYTHON)
            if not first:
                out[o] = 44
                o += 1
            first = False
            o, nd = _put_scalar(b, ekind, ea, ec, out, o, dbits, nd, dtab_off, dtab, have_dtab)
            if o < 0:
                return o, nd, o
            p = ehi
        else:
            p = skip_field(b, p, c, f, wt, depth + 1)
            if p < 0:
                return o, nd, p
    out[o] = 93
    return o + 1, nd, 0


@njit(nogil=True)
def put_member(b, lo, hi, depth, out, o, dbits, nd, dtab_off, dtab, have_dtab):
    """A KeyValue as the JSON member ``"key":value`` -> (o, nd, status, key start, key end). With the
    comma before it, at most 6 times the KeyValue's size, its tag and length included (``otlp_wire._room``)."""
    klo, khi, vlo, vhi, n_key, n_value = np.int64(0), np.int64(0), np.int64(-1), np.int64(0), 0, 0
    p = lo
    while p < hi:
        f, wt, p = read_tag(b, p, hi)
        if p < 0:
            return o, nd, p, klo, khi
        if (f == 1 or f == 2) and wt == 2:
            x, y = read_size(b, p, hi)
            if x < 0:
                return o, nd, x, klo, khi
            if f == 1:
                klo, khi, n_key = x, y, n_key + 1
            else:
                vlo, vhi, n_value = x, y, n_value + 1
            p = y
        else:
            p = skip_field(b, p, hi, f, wt, depth)
            if p < 0:
                return o, nd, p, klo, khi
    if n_key > 1 or n_value > 1:  # protobuf merges repeated message fields: leave it to Python
        return o, nd, TO_PYTHON, klo, khi
    o = put_string(b, klo, khi, out, o)
    if o < 0:
        return o, nd, o, klo, khi
    out[o] = 58
    o += 1
    if vlo < 0:
        return put_literal(ptr(_NULL), _NULL.size, out, o), nd, 0, klo, khi
    o, nd, status = _put_value(b, vlo, vhi, depth + 1, out, o, dbits, nd, dtab_off, dtab, have_dtab)
    if o < 0:
        status = o
    return o, nd, status, klo, khi


# ---------------------------------------------------------------- Span.Event
@njit(nogil=True)
def _same_bytes(b, lo1, hi1, lo2, hi2):
    if hi1 - lo1 != hi2 - lo2:
        return False
    for k in range(hi1 - lo1):
        if b[lo1 + k] != b[lo2 + k]:
            return False
    return True


@njit(nogil=True)
def scan_event(b, lo, hi):
    """A Span.Event -> (time bits, name start, name end, number of attributes, status)."""
    t, nlo, nhi, n_attr = np.int64(0), np.int64(0), np.int64(0), 0
    p = lo
    while p < hi:
        f, wt, p = read_tag(b, p, hi)
        if p < 0:
            return t, nlo, nhi, n_attr, p
        if f == 1 and wt == 1:
            if p + 8 > hi:
                return t, nlo, nhi, n_attr, -E_TRUNCATED
            t = read_fixed64(b, p)
            p += 8
        elif (f == 2 or f == 3) and wt == 2:
            x, y = read_size(b, p, hi)
            if x < 0:
                return t, nlo, nhi, n_attr, x
            if f == 2:
                nlo, nhi = x, y
                if not is_utf8(b, x, y):
                    return t, nlo, nhi, n_attr, -E_UTF8
            else:
                n_attr += 1
            p = y
        else:
            p = skip_field(b, p, hi, f, wt, 0)
        if p < 0:
            return t, nlo, nhi, n_attr, p
    return t, nlo, nhi, n_attr, 0


@njit(nogil=True)
def put_event(b, lo, hi, t, nlo, nhi, n_attr, out, o, dbits, nd, dtab_off, dtab, have_dtab):
    """A scanned Span.Event as ``{"time_ns":..,"name":..,"attributes":{..}}`` -> (o, nd, status)."""
    o = put_literal(ptr(_TIME_NS), _TIME_NS.size, out, o)
    o = put_unsigned(t, out, o)
    o = put_literal(ptr(_NAME), _NAME.size, out, o)
    o = put_string(b, nlo, nhi, out, o)
    o = put_literal(ptr(_ATTRIBUTES), _ATTRIBUTES.size, out, o)
    keys = np.empty((n_attr, 2), np.int64)
    i = 0
    p = lo
    while p < hi:
        f, wt, p = read_tag(b, p, hi)
        if f == 3 and wt == 2:
            x, y = read_size(b, p, hi)
            if i:
                out[o] = 44
                o += 1
            o, nd, status, keys[i, 0], keys[i, 1] = put_member(b, x, y, 1, out, o, dbits, nd, dtab_off, dtab,
                                                                 have_dtab)
            if status != 0:
                return o, nd, status
            for j in range(i):  # a dict keeps one value per key: leave duplicates to Python
                if _same_bytes(b, keys[j, 0], keys[j, 1], keys[i, 0], keys[i, 1]):
                    return o, nd, TO_PYTHON
            i += 1
            p = y
        else:
            p = skip_field(b, p, hi, f, wt, 0)
    out[o] = 125
    out[o + 1] = 125
    return o + 2, nd, 0
