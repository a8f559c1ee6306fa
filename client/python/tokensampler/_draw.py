"""The draw of the README ("The draw"), in NumPy: replay any token a server returned.

A draw is a pure function of (processed distribution, seed, step, sample index):
Philox4x32-10 keyed by the seed turns (step, index) into two 32-bit words, they make a
53-bit uniform u in [0, 1), and the token is the first, in ascending token-id order, whose
cumulative probability (summed in double) exceeds u times the total.
"""

from typing import Sequence, Union

import numpy as np

_MASK32 = 0xFFFFFFFF
_M0 = np.uint64(0xD2511F53)
_M1 = np.uint64(0xCD9E8D57)
_SHIFT32 = np.uint64(32)
_LOW32 = np.uint64(_MASK32)

IntOrArray = Union[int, Sequence[int], np.ndarray]


def _as_u64(value: IntOrArray, name: str, bits: int) -> np.ndarray:
    array = np.asarray(value, dtype=object)
    flat = [int(v) for v in array.reshape(-1)]
    for v in flat:
        if not 0 <= v < (1 << bits):
            raise ValueError(f"{name}: must be in [0, 2^{bits}), got {v}")
    return np.array(flat, dtype=np.uint64).reshape(array.shape)


def philox4x32_10(counter, key) -> np.ndarray:
    """Philox4x32-10 (Salmon et al., SC 2011) of 4 counter words under 2 key words.

    counter: 4 words, each an int or an array (broadcast together); key: 2 ints.
    Returns a uint32 array of shape (4,) + the broadcast shape.
    """
    c0, c1, c2, c3 = np.broadcast_arrays(*[_as_u64(c, "counter", 32) for c in counter])
    k0, k1 = (int(k) & _MASK32 for k in key)
    for round_index in range(10):
        if round_index > 0:
            k0 = (k0 + 0x9E3779B9) & _MASK32
            k1 = (k1 + 0xBB67AE85) & _MASK32
        p0 = _M0 * c0  # 32 x 32 -> 64-bit products: no overflow in uint64
        p1 = _M1 * c2
        c0, c1, c2, c3 = ((p1 >> _SHIFT32) ^ c1 ^ np.uint64(k0), p1 & _LOW32,
                          (p0 >> _SHIFT32) ^ c3 ^ np.uint64(k1), p0 & _LOW32)
    return np.stack([c0, c1, c2, c3]).astype(np.uint32)


def uniform(seed: int, step: IntOrArray, index: IntOrArray = 0) -> Union[float, np.ndarray]:
    """The draw's uniform double in [0, 1) for (seed, step, sample index).

    seed and step are uint64, index a uint32; step and index may be arrays (broadcast).
    README known answer: uniform(42, 0, 0) == 0.6129598801477738.
    """
    seed = int(_as_u64(seed, "seed", 64))
    step_u = _as_u64(step, "step", 64)
    index_u = _as_u64(index, "index", 32)
    words = philox4x32_10((step_u & _LOW32, step_u >> _SHIFT32, index_u, 0),
                          (seed & _MASK32, seed >> 32))
    w0 = (words[0] >> np.uint32(5)).astype(np.float64)
    w1 = (words[1] >> np.uint32(6)).astype(np.float64)
    u = (w0 * 2.0 ** 26 + w1) / 2.0 ** 53  # exact: a 53-bit integer over 2^53
    return float(u) if u.ndim == 0 else u


def replay(token_ids: Sequence[int], probs: Sequence[float], seed: int, step: int,
           index: IntOrArray = 0) -> Union[int, np.ndarray]:
    """The token the server draws from a distribution for (seed, step, sample index).

    token_ids, probs: the processed distribution in any order, e.g. a Distribution from
    Client.distribution() with the same row and parameters (its float32 probs are
    exactly what the server summed, so the replay is bit-exact). Tokens with p = 0 are
    never drawn. index may be an array of sample indices; then an array of tokens is
    returned. Greedy calls (temperature 0) draw nothing: do not replay them.
    Raises ValueError for mismatched lengths, repeated ids or no token with p > 0.
    """
    ids = np.asarray(token_ids, dtype=np.int64).reshape(-1)
    p = np.asarray(probs, dtype=np.float32).astype(np.float64).reshape(-1)
    if ids.shape != p.shape:
        raise ValueError(f"token_ids and probs differ in length: {ids.size} != {p.size}")
    order = np.argsort(ids, kind="stable")
    ids, p = ids[order], p[order]
    if ids.size > 1 and np.any(ids[1:] == ids[:-1]):
        raise ValueError("token_ids: repeated token id " +
                         str(int(ids[1:][ids[1:] == ids[:-1]][0])))
    keep = p > 0
    ids, p = ids[keep], p[keep]
    if ids.size == 0:
        raise ValueError("probs: no token has p > 0")
    cum = np.cumsum(p)  # sequential double sums, in ascending id order, as the server does
    target = np.asarray(uniform(seed, step, index)) * cum[-1]
    pos = np.minimum(np.searchsorted(cum, target, side="right"), ids.size - 1)
    tokens = ids[pos]
    return int(tokens) if tokens.ndim == 0 else tokens.astype(np.int32)
