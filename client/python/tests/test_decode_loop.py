"""The decode-loop example (examples/decode_loop.py) end to end against a real server."""

import math
import os
import sys
import time

import numpy as np
import pytest

import tokensampler

torch = pytest.importorskip("torch")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "examples"))
import decode_loop  # noqa: E402

LENGTH = 200


@pytest.fixture(scope="module")
def model():
    start = time.monotonic()
    m = decode_loop.train()
    print(f"decode_loop.train: {time.monotonic() - start:.1f} s")
    return m


def test_same_seed_same_text_other_seed_other_text(client, model):
    a, _ = decode_loop.generate(client, model, decode_loop.PROMPTS, LENGTH, seed=1)
    b, _ = decode_loop.generate(client, model, decode_loop.PROMPTS, LENGTH, seed=1)
    c, _ = decode_loop.generate(client, model, decode_loop.PROMPTS, LENGTH, seed=2)
    assert a == b
    assert all(len(t) == LENGTH for t in a.values())
    for sid in a:
        assert a[sid] != c[sid], sid


def test_every_token_replays_from_its_distribution(client, model):
    _, steps = decode_loop.generate(client, model, decode_loop.PROMPTS, LENGTH, seed=3)
    assert len(steps) == LENGTH * len(decode_loop.PROMPTS)
    for step in steps:
        assert step.logits.dtype == torch.bfloat16
        dist = client.distribution(step.logits, context_token_ids=step.history,
                                   **decode_loop.SAMPLING)
        token = tokensampler.replay(dist.token_ids, dist.probs, step.result.seed,
                                    step.result.step)
        assert token == step.result.token_id, (step.sequence_id, step.result.step)


def test_text_is_far_more_likely_than_noise(client, model):
    texts, _ = decode_loop.generate(client, model, decode_loop.PROMPTS, LENGTH, seed=4)
    rng = np.random.default_rng(0)
    vocab = len(model.chars)
    for sid, text in texts.items():
        prompt = decode_loop.PROMPTS[sid]
        noise = "".join(model.chars[i] for i in rng.integers(0, vocab, LENGTH))
        per_char = model.log_likelihood(prompt, text) / LENGTH
        noise_per_char = model.log_likelihood(prompt, noise) / LENGTH
        print(f"{sid}: {per_char:.2f} nats/char generated, {noise_per_char:.2f} noise, "
              f"{-math.log(vocab):.2f} uniform")
        # Uniform guessing scores -log(V) ~ -4.4 nats per character.
        assert per_char > -math.log(vocab) + 2.0
        assert per_char > noise_per_char + 3.0
