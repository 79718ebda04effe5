"""The counter-based random numbers of the native library, mirrored in Python bit for bit: the functions of
native/src/rng.rs that a dropout mask needs.

    mix32              rng::mix32               the lowbias32 integer mixer
    key                rng::key                 the key of stream (seed, domain, stream)
    rand               rng::rand                element `counter` of the stream with key k (u32)
    dropout_key        rng::dropout_key         the key of layer `layer`'s mask in pass `pass` of stream `stream`
    dropout_threshold  rng::dropout_threshold   element kept when rand >> 8 is below this (24-bit 1 - p)
    dropout_scale      rng::dropout_scale       the kept value, 1 / (1 - p) with 1 - p rounded to float32
    dropout_mask       rng::dropout_mask        the mask value of one element: scale or 0
    uniform24          rng::uniform24           a uniform in [0, 1) with 24 bits

plus `keep_mask`, the keep mask [rows, out] (booleans, counter r * out + j) of one layer in one forward. Plain Python
ints masked to 32 bits (u32 wrapping arithmetic); the float32 values go through numpy.float32. tests/reference/rng.ts
is the TypeScript mirror; `python bench/reference/rng_mirror.py` checks this one against values it gives.
"""

from __future__ import annotations

import math

import numpy as np

M32 = 0xFFFF_FFFF
DOMAIN_DROPOUT = 7
DOMAIN_LABELS = 8


def mix32(x: int) -> int:
    """rng::mix32: the lowbias32 integer mixer (Chris Wellons' hash prospector)."""
    x &= M32
    x ^= x >> 16
    x = (x * 0x7FEB_352D) & M32
    x ^= x >> 15
    x = (x * 0x846C_A68B) & M32
    x ^= x >> 16
    return x


def key(seed: int, domain: int, stream: int) -> int:
    """rng::key: the key of one stream (seed is a u64)."""
    seed &= 0xFFFF_FFFF_FFFF_FFFF
    k = mix32((seed & M32) ^ 0x9E37_79B9)
    k = mix32(k ^ (seed >> 32))
    k = mix32(k ^ (domain & M32))
    return mix32(k ^ (stream & M32))


def rand(k: int, counter: int) -> int:
    """rng::rand: element `counter` of the stream with key `k`."""
    return mix32((mix32((counter & M32) ^ k) + k) & M32)


def dropout_key(seed: int, stream: int, pass_: int, layer: int) -> int:
    """rng::dropout_key: the key of the dropout mask of layer `layer` (0-based layer index of the MLP) in pass
    `pass_` of the forwards drawn from stream `stream`."""
    sub = (pass_ * 256 + layer) & M32
    return mix32(key(seed, DOMAIN_DROPOUT, stream) ^ mix32(sub ^ 0x85EB_CA6B))


def dropout_threshold(p: float) -> int:
    """rng::dropout_threshold: ceil((1 - p) 2^24) in float64 (an element is kept when rand >> 8 is below it)."""
    return int(math.ceil((1.0 - p) * 16_777_216.0))


def dropout_scale(p: float) -> np.float32:
    """rng::dropout_scale: 1 / (1 - p) in float32 with 1 - p rounded to float32 (0x3FD55555 for p = 0.4)."""
    return np.float32(1.0) / np.float32(1.0 - p)


def dropout_mask(k: int, counter: int, threshold: int, scale: np.float32) -> np.float32:
    """rng::dropout_mask: the mask value of element `counter` under key `k`: `scale` if kept, else 0."""
    return scale if (rand(k, counter) >> 8) < threshold else np.float32(0.0)


def uniform24(k: int, counter: int) -> float:
    """rng::uniform24: element `counter` as a uniform in [0, 1) with 24 bits (exact in float32 and float64)."""
    return (rand(k, counter) >> 8) / 16_777_216.0


def keep_mask(seed: int, stream: int, pass_: int, layer: int, rows, out: int, p: float) -> np.ndarray:
    """The keep mask [len(rows), out] (bool) of layer `layer` of `out` features in pass `pass_` of stream `stream`:
    row i of the result is row `rows[i]` of that forward, element (r, j) kept iff
    dropout_mask(dropout_key(seed, stream, pass_, layer), r * out + j, threshold, scale) != 0."""
    k = dropout_key(seed, stream, pass_, layer)
    t, s = dropout_threshold(p), dropout_scale(p)
    return np.array([[dropout_mask(k, r * out + j, t, s) != 0 for j in range(out)] for r in rows], dtype=bool)


def _check():
    # values printed by tests/reference/rng.ts (mix32, key, rand, uniformStream(0, 8, 3)'s 6th number, dropoutKept)
    assert mix32(0) == 0
    assert [mix32(x) for x in (1, 0xDEADBEEF, M32)] == [1753845952, 3861431939, 1734902346]
    assert key(0, DOMAIN_DROPOUT, 0) == 3310149260
    assert key(2**40 + 5, 1, 7) == 3960816497
    assert [rand(12345, c) for c in (0, 1, 999)] == [2233732211, 3609473177, 3455443710]
    assert uniform24(key(0, DOMAIN_LABELS, 3), 5) == 0.5522015690803528
    want = "00001111110000000101111101110100"  # dropoutKept(0, 0, 1, 1, c, 0.4), c = 0..31
    assert "".join("1" if v else "0" for v in keep_mask(0, 0, 1, 1, [0], 32, 0.4)[0]) == want
    want = "10101010110111011000111111001100"  # dropoutKept(0, 3, 2, 2, 8 * 32 + c, 0.4), c = 0..31
    assert "".join("1" if v else "0" for v in keep_mask(0, 3, 2, 2, [8], 32, 0.4)[0]) == want
    assert dropout_threshold(0.4) == 10066330
    assert dropout_scale(0.4).view(np.uint32) == 0x3FD55555
    print("rng_mirror: matches tests/reference/rng.ts")


if __name__ == "__main__":
    _check()
