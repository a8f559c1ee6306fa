"""tokensampler.replay / uniform / philox4x32_10 against the README's known answers."""

import numpy as np
import pytest

import tokensampler

MASK32 = 0xFFFFFFFF


def test_philox_known_answers():
    # Known-answer vectors of Random123's Philox4x32-10 (kat_vectors), as the C++ suite uses.
    cases = [
        ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
        ((MASK32,) * 4, (MASK32, MASK32), (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
        ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
         (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
    ]
    for counter, key, want in cases:
        assert tuple(int(w) for w in tokensampler.philox4x32_10(counter, key)) == want


def test_uniform_readme_known_answers():
    assert tokensampler.uniform(0, 0, 0) == 0.39904647231489565
    assert tokensampler.uniform(42, 0, 0) == 0.6129598801477738
    assert tokensampler.uniform(42, 1, 0) == 0.9877186516453577
    assert tokensampler.uniform(42, 0, 1) == 0.010058843540026619
    assert tokensampler.uniform(2 ** 64 - 1, 2 ** 40 + 3, 7) == 0.3960849721535957


def test_uniform_vectorised_matches_scalar():
    steps = np.arange(0, 50)
    many = tokensampler.uniform(12345, steps, 3)
    assert many.shape == (50,)
    for s in (0, 17, 49):
        assert many[s] == tokensampler.uniform(12345, int(s), 3)
    assert np.all((many >= 0) & (many < 1))


def test_replay_walks_ids_in_ascending_order():
    # u(42, 0, 0) = 0.61...: cumulative over ids 0, 1, 2 = 0.5, 0.75, 1.0 -> id 1,
    # whatever order the distribution is given in.
    assert tokensampler.replay([2, 0, 1], [0.25, 0.5, 0.25], 42, 0) == 1
    assert tokensampler.replay([0, 1, 2], [0.5, 0.25, 0.25], 42, 0) == 1
    # u(42, 1, 0) = 0.98...: the last token.
    assert tokensampler.replay([0, 1, 2], [0.5, 0.25, 0.25], 42, 1) == 2
    # u(42, 0, 1) = 0.01...: the first.
    assert tokensampler.replay([7, 9], [0.5, 0.5], 42, 0, 1) == 7


def test_replay_skips_zero_probabilities_and_normalises_by_the_total():
    # p = 0 tokens are never drawn, even at the end of the walk.
    assert tokensampler.replay([0, 1, 2], [0.0, 1.0, 0.0], 42, 1) == 1
    # Unnormalised weights: target = u * total.
    assert tokensampler.replay([0, 1, 2], [2.0, 1.0, 1.0], 42, 0) == 1


def test_replay_array_of_indices():
    tokens = tokensampler.replay([0, 1], [0.5, 0.5], 42, 0, np.arange(4))
    want = [tokensampler.replay([0, 1], [0.5, 0.5], 42, 0, i) for i in range(4)]
    assert tokens.tolist() == want


def test_replay_errors():
    with pytest.raises(ValueError, match="differ in length"):
        tokensampler.replay([0, 1], [1.0], 1, 0)
    with pytest.raises(ValueError, match="repeated token id 3"):
        tokensampler.replay([3, 3], [0.5, 0.5], 1, 0)
    with pytest.raises(ValueError, match="no token has p > 0"):
        tokensampler.replay([0, 1], [0.0, 0.0], 1, 0)
    with pytest.raises(ValueError, match=r"seed: must be in \[0, 2\^64\), got -1"):
        tokensampler.uniform(-1, 0)
    with pytest.raises(ValueError, match=r"index: must be in \[0, 2\^32\)"):
        tokensampler.uniform(1, 0, 2 ** 32)
