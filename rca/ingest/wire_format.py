"""Protobuf wire-format primitives for the compiled OTLP decoder (``rca.ingest.otlp_wire``).

Pointer intrinsics, varints, tags, length prefixes, fixed64, skipping unknown fields (groups included,
``MAX_DEPTH`` levels deep at most), UTF-8 checks, and the byte writers that render JSON strings (as
``json.dumps(ensure_ascii=False)``), decimal numbers and hex into preallocated buffers. Helpers return
an error as a negative position: ``-code``, one of ``ERRORS``.

It imports numba: only modules that are themselves imported lazily may import it. Nothing here is
cached on its own: numba's cache holds it compiled into the kernels of ``otlp_wire``, which empties
that cache when this file changed.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

# error codes (returned as negative positions by helpers, as ``err`` by the kernels)
E_TRUNCATED, E_VARINT, E_TAG, E_WIRETYPE, E_GROUP, E_DEPTH, E_UTF8, E_TOO_LARGE = range(1, 9)
ERRORS = {E_TRUNCATED: "field runs past the end of its message", E_VARINT: "varint longer than 10 bytes",
          E_TAG: "invalid field tag", E_WIRETYPE: "invalid wire type", E_GROUP: "unmatched group",
          E_DEPTH: "nested more than 100 levels deep", E_UTF8: "string field is not valid UTF-8",
          E_TOO_LARGE: "request too large to decode"}
MAX_DEPTH = 100

_HEX = np.frombuffer(b"0123456789abcdef", np.uint8)
_ESCAPES = np.zeros(256, np.uint8)  # byte -> the letter after the backslash; 0: not escaped; 117: \u00XX
_ESCAPES[:32] = ord("u")
for _c, _e in zip(b'\b\t\n\f\r"\\', b'btnfr"\\'):
    _ESCAPES[_c] = _e


# ---------------------------------------------------------------- pointers
@intrinsic
def ptr(typingctx, arr):
    """An array's data as a typed pointer. The kernels hand pointers, not arrays, to their helpers:
    every array argument costs two atomic reference-count updates per call."""
    if not isinstance(arr, types.Array):
        return None

    def codegen(context, builder, signature, args):
        return context.make_array(signature.args[0])(context, builder, value=args[0]).data

    return types.CPointer(arr.dtype)(arr), codegen


@intrinsic
def copy_bytes(typingctx, dst, at, src, start, n):
    """memcpy(dst + at, src + start, n) between uint8 pointers."""
    def codegen(context, builder, signature, args):
        d, a, s, st, k = args
        cgutils.raw_memcpy(builder, builder.gep(d, [a]), builder.gep(s, [st]), k, 1)
        return context.get_dummy_value()

    return types.none(dst, at, src, start, n), codegen


@intrinsic
def load8(typingctx, src, at):
    """The 8 bytes at ``src + at`` as one little-endian uint64 (unaligned)."""
    def codegen(context, builder, signature, args):
        return builder.load(builder.bitcast(builder.gep(args[0], [args[1]]), ir.IntType(64).as_pointer()), align=1)

    return types.uint64(src, at), codegen


@intrinsic
def store8(typingctx, dst, at, x):
    """The uint64 ``x`` into the 8 bytes at ``dst + at`` (unaligned)."""
    def codegen(context, builder, signature, args):
        builder.store(args[2], builder.bitcast(builder.gep(args[0], [args[1]]), ir.IntType(64).as_pointer()),
                      align=1)
        return context.get_dummy_value()

    return types.none(dst, at, types.uint64), codegen


# ---------------------------------------------------------------- fields
@njit(nogil=True, inline="always")
def read_varint(b, p, end):
    """-> (value as int64 bits, next position); position -code on error."""
    if p < end and b[p] < 0x80:
        return np.int64(b[p]), p + 1
    x = np.int64(0)
    for shift in range(0, 70, 7):
        if p >= end:
            return np.int64(0), -E_TRUNCATED
        c = np.int64(b[p])
        p += 1
        x |= (c & 0x7F) << shift
        if c < 0x80:
            return x, p
    return np.int64(0), -E_VARINT


@njit(nogil=True, inline="always")
def read_tag(b, p, end):
    """-> (field number, wire type, next position): at most 5 bytes, below 2**32, field number not 0."""
    if p < end and 8 <= b[p] < 0x80:
        return np.int64(b[p] >> 3), np.int64(b[p] & 7), p + 1
    x = np.int64(0)
    for shift in range(0, 35, 7):
        if p >= end:
            return 0, 0, -E_TRUNCATED
        c = np.int64(b[p])
        p += 1
        x |= (c & 0x7F) << shift
        if c < 0x80:
            if x > 0xFFFFFFFF or x < 8:
                return 0, 0, -E_TAG
            return x >> 3, x & 7, p
    return 0, 0, -E_TAG


@njit(nogil=True, inline="always")
def read_size(b, p, end):
    """A length prefix -> (start, end) of the bytes it announces; start -code on error."""
    x = np.int64(0)
    for shift in range(0, 35, 7):
        if p >= end:
            return -E_TRUNCATED, 0
        c = np.int64(b[p])
        p += 1
        x |= (c & 0x7F) << shift
        if c < 0x80:
            if x > end - p:
                return -E_TRUNCATED, 0
            return p, p + x
    return -E_VARINT, 0


@njit(nogil=True, inline="always")
def read_fixed64(b, p):
    x = np.int64(0)
    for k in range(8):
        x |= np.int64(b[p + k]) << (8 * k)
    return x


@njit(nogil=True)
def _skip_group(b, p, end, field, depth):
    """Skip the group opened by ``field`` in a message at ``depth``; -> next position or -code."""
    stack = np.empty(MAX_DEPTH + 1, np.int64)
    top = 0
    stack[0] = field
    if depth + 1 > MAX_DEPTH:
        return -E_DEPTH
    while True:
        f, wt, p = read_tag(b, p, end)
        if p < 0:
            return p if p != -E_TRUNCATED else -E_GROUP
        if wt == 4:
            if f != stack[top]:
                return -E_GROUP
            top -= 1
            if top < 0:
                return p
        elif wt == 3:
            if depth + top + 2 > MAX_DEPTH:
                return -E_DEPTH
            top += 1
            stack[top] = f
        elif wt == 0:
            _, p = read_varint(b, p, end)
        elif wt == 1:
            p = p + 8 if p + 8 <= end else -E_TRUNCATED
        elif wt == 2:
            p, p2 = read_size(b, p, end)
            if p >= 0:
                p = p2
        elif wt == 5:
            p = p + 4 if p + 4 <= end else -E_TRUNCATED
        else:
            return -E_WIRETYPE
        if p < 0:
            return p


@njit(nogil=True)
def skip_field(b, p, end, field, wt, depth):
    """Skip an unknown field whose tag ended at ``p``; -> next position or -code."""
    if wt == 0:
        _, p = read_varint(b, p, end)
        return p
    if wt == 1:
        return p + 8 if p + 8 <= end else -E_TRUNCATED
    if wt == 2:
        lo, hi = read_size(b, p, end)
        return hi if lo >= 0 else lo
    if wt == 5:
        return p + 4 if p + 4 <= end else -E_TRUNCATED
    if wt == 3:
        return _skip_group(b, p, end, field, depth)
    return -E_GROUP if wt == 4 else -E_WIRETYPE


# ---------------------------------------------------------------- text
_ONES, _HIGH = np.uint64(0x0101010101010101), np.uint64(0x8080808080808080)
_SPACES, _QUOTES, _BACKSLASHES = np.uint64(0x2020202020202020), np.uint64(0x2222222222222222), np.uint64(
    0x5C5C5C5C5C5C5C5C)


@njit(nogil=True, inline="always")
def _plain8(x):
    """Whether none of the 8 bytes of ``x`` needs escaping in JSON or is non-ASCII (exact SWAR tests)."""
    q = x ^ _QUOTES
    s = x ^ _BACKSLASHES
    return ((x | ((x - _SPACES) & ~x) | ((q - _ONES) & ~q) | ((s - _ONES) & ~s)) & _HIGH) == 0


@njit(nogil=True, inline="always")
def _utf8_len(b, p, hi):
    """Length of the valid UTF-8 sequence that starts with the non-ASCII byte at ``p``; 0 if invalid."""
    c = b[p]
    if c < 0xC2 or c > 0xF4:
        return 0
    n = 2 if c < 0xE0 else (3 if c < 0xF0 else 4)
    if p + n > hi:
        return 0
    c1 = b[p + 1]
    lo1, hi1 = 0x80, 0xBF
    if c == 0xE0:
        lo1 = 0xA0
    elif c == 0xED:
        hi1 = 0x9F
    elif c == 0xF0:
        lo1 = 0x90
    elif c == 0xF4:
        hi1 = 0x8F
    if c1 < lo1 or c1 > hi1:
        return 0
    for k in range(2, n):
        if b[p + k] < 0x80 or b[p + k] > 0xBF:
            return 0
    return n


@njit(nogil=True)
def is_utf8(b, lo, hi):
    p = lo
    while p < hi:
        if p + 8 <= hi and (load8(b, p) & _HIGH) == 0:
            p += 8
        elif b[p] < 0x80:
            p += 1
        else:
            n = _utf8_len(b, p, hi)
            if n == 0:
                return False
            p += n
    return True


@njit(nogil=True)
def put_string(b, lo, hi, out, o):
    """``b[lo:hi]`` as a JSON string (quotes, escapes as json.dumps(ensure_ascii=False)); -> o or -E_UTF8."""
    out[o] = 34
    o += 1
    p = lo
    while p < hi:
        if p + 8 <= hi:
            x = load8(b, p)
            if _plain8(x):
                store8(out, o, x)
                o += 8
                p += 8
                continue
        c = b[p]
        if c < 0x80:
            e = _ESCAPES[c]
            if e == 0:
                out[o] = c
                o += 1
            else:
                out[o] = 92
                out[o + 1] = e
                o += 2
                if e == 117:
                    out[o] = 48
                    out[o + 1] = 48
                    out[o + 2] = _HEX[c >> 4]
                    out[o + 3] = _HEX[c & 15]
                    o += 4
            p += 1
        else:
            n = _utf8_len(b, p, hi)
            if n == 0:
                return -E_UTF8
            for k in range(n):
                out[o + k] = b[p + k]
            o += n
            p += n
    out[o] = 34
    return o + 1


@njit(nogil=True, inline="always")
def put_literal(lit, n, out, o):
    for k in range(n):
        out[o + k] = lit[k]
    return o + n


# ---------------------------------------------------------------- numbers, hex, buffers
@njit(nogil=True)
def put_unsigned(x, out, o):
    """The unsigned 64-bit number whose bits are ``x``, in decimal."""
    u = np.uint64(x)
    start = o
    while True:
        out[o] = 48 + np.uint8(u % np.uint64(10))
        o += 1
        u = u // np.uint64(10)
        if u == 0:
            break
    i, j = start, o - 1
    while i < j:
        out[i], out[j] = out[j], out[i]
        i += 1
        j -= 1
    return o


@njit(nogil=True)
def put_signed(x, out, o):
    if x < 0:
        out[o] = 45
        return put_unsigned(~x + 1, out, o + 1)  # 2**63 for -2**63: read back as unsigned
    return put_unsigned(x, out, o)


@njit(nogil=True, inline="always")
def put_hex(b, lo, hi, out, o):
    for p in range(lo, hi):
        out[o] = _HEX[b[p] >> 4]
        out[o + 1] = _HEX[b[p] & 15]
        o += 2
    return o


@njit(nogil=True)
def grown(buf, used, need):
    """A larger copy of ``buf`` with room for ``need`` more bytes after ``used``."""
    bigger = np.empty(max(2 * buf.size, used + need), np.uint8)
    copy_bytes(ptr(bigger), 0, ptr(buf), 0, used)
    return bigger
