"""tokensampler.Client against a real tokensampler-server (see conftest.py)."""

import math

import grpc
import numpy as np
import pytest

import tokensampler
from tokensampler import SamplerError

try:
    import torch
except ImportError:  # the torch cases skip; scripts/install-deps.sh --test brings it
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="needs torch (python3-torch)")

CONFIGS = [
    dict(temperature=0.8, top_k=50, top_p=0.95, min_p=0.05),
    dict(temperature=1.3),
    dict(temperature=0.7, top_p=0.9),
    dict(typical_p=0.9, min_tokens_to_keep=3),
    dict(temperature=1.0, preset="hf", top_k=20),
    dict(temperature=0.9, preset="LLAMA_CPP", top_p=0.8, min_p=0.02),
    dict(repetition_penalty=1.3, presence_penalty=0.4, frequency_penalty=0.2),
    dict(logit_bias={3: 5.0, 4: -math.inf}, banned_token_ids=[5]),
]


def test_health_and_server_info(client, server):
    assert client.health() is tokensampler.HealthStatus.SERVING
    assert client.health("tokensampler.v1.Sampler") is tokensampler.HealthStatus.SERVING
    assert client.health("no.such.Service") is tokensampler.HealthStatus.SERVICE_UNKNOWN
    info = client.server_info()
    assert info.version == tokensampler.__version__
    assert "PRESET_HF" in info.presets and "DTYPE_BFLOAT16" in info.dtypes
    assert info.max_vocab >= 128256 and info.worker_threads == 2
    assert info.instance.endswith(f":{server.proc.pid}")
    # Every ServerInfo field of the proto is a named attribute or in `extra`.
    from tokensampler.v1 import sampler_pb2
    for field in sampler_pb2.ServerInfo.DESCRIPTOR.fields:
        assert hasattr(info, field.name) or field.name in info.extra, field.name


def test_every_seeded_token_replays(client):
    rng = np.random.default_rng(7)
    checked = 0
    for i, config in enumerate(CONFIGS):
        logits = rng.normal(0, 3, size=2000).astype(np.float32)
        context = [3, 3, 9, 17]
        for seed, step in ((1, 0), (42, 9), (2 ** 63 + 5, 2 ** 33 + 1)):
            result = client.sample(logits, step=step, context_token_ids=context, seed=seed,
                                   num_samples=4, **config)
            dist = client.distribution(logits, context_token_ids=context, **config)
            assert (result.seed, result.step) == (seed, step)
            assert abs(float(dist.probs.astype(np.float64).sum()) - 1) < 1e-4
            assert np.all(np.diff(dist.probs) <= 0)  # descending
            want = tokensampler.replay(dist.token_ids, dist.probs, seed, step, np.arange(4))
            assert result.token_ids.tolist() == want.tolist(), f"config {i} seed {seed}"
            checked += 4
    assert checked == len(CONFIGS) * 3 * 4


def test_server_picked_seed_is_returned_and_replays(client):
    logits = np.linspace(-2, 2, 500).astype(np.float32)
    result = client.sample(logits, step=3, temperature=1.0)
    dist = client.distribution(logits, temperature=1.0)
    assert result.step == 3
    assert result.token_id == dist.replay(result.seed, 3)


def test_logprobs_and_top_logprobs(client):
    result = client.sample(np.array([2.0, 1.0, 0.1], np.float32), seed=42, top_logprobs=3,
                           num_samples=2)
    assert result.token_ids.dtype == np.int32 and result.token_ids.shape == (2,)
    assert result.top_token_ids.tolist() == [[0, 1, 2], [0, 1, 2]]
    logsoftmax = np.array([2.0, 1.0, 0.1]) - math.log(sum(math.exp(v) for v in (2.0, 1.0, 0.1)))
    np.testing.assert_allclose(result.top_logprobs[0], logsoftmax, rtol=1e-5)
    processed = client.sample(np.array([2.0, 1.0, 0.1], np.float32), seed=42, top_k=1,
                              logprobs_mode="processed")
    assert processed.logprobs[0] == 0.0


def test_structured_output_and_rl_outputs(client):
    """The bitmask (bytes or xgrammar-style int32 words, per row in a batch), bad words as
    token lists, the prompt/output split, and rank, asked tokens and the kept set."""
    logits = np.linspace(0, 1, 40, dtype=np.float32)
    words = np.zeros(2, np.int32)
    words[0] = (1 << 3) | (1 << 5)   # tokens 3 and 5
    words[1] = -(1 << 31)            # token 63: past V = 40, ignored
    result = client.sample(logits, seed=1, allowed_token_bitmask=words, top_logprobs=1,
                           logprob_token_ids=[5, 3, 39], return_kept_set=True,
                           logprobs_mode="processed_logits")
    assert result.token_id in (3, 5)
    assert result.kept_token_ids().tolist() == [3, 5]
    assert result.ranks[0] == (1 if result.token_id == 5 else 2)
    np.testing.assert_allclose(result.token_logprobs[0][:2], [logits[5], logits[3]])
    assert result.token_logprobs[0][2] == -np.inf
    batch = client.distribution(np.tile(logits, (2, 1)),
                                allowed_token_bitmask=np.array([[1 << 7, 0], [1 << 9, 0]]))
    assert [d.token_ids.tolist() for d in batch] == [[7], [9]]
    # The last output token 38 starts the bad word [38, 39]; the prompt 38 does not count
    # for min_tokens' output length nor for VLLM's presence penalty.
    dist = client.distribution(logits, context_token_ids=[38, 38], num_prompt_tokens=1,
                               bad_words=[[38, 39]], min_tokens=2, stop_token_ids=[0],
                               preset="PRESET_VLLM", temperature=0.5)
    assert 39 not in dist.token_ids.tolist() and 0 not in dist.token_ids.tolist()
    with pytest.raises(tokensampler.SamplerError) as e:
        client.sample(logits, allowed_token_bitmask=b"\xff" * 4)
    assert e.value.field == "rows[0].allowed_token_bitmask"


def _exact_rows(rng, vocab):
    """Logits exactly representable in bf16 and fp16, so every encoding sends the same."""
    return (rng.integers(-128, 128, size=vocab) / 16.0).astype(np.float32)


_INPUTS = {
    "np-f32": lambda a: a,
    "np-f16": lambda a: a.astype(np.float16),
    "np-f32-big-endian": lambda a: a.astype(">f4"),
    "list": lambda a: a.tolist(),
    "torch-f32": lambda a: torch.from_numpy(a),
    "torch-f16": lambda a: torch.from_numpy(a).to(torch.float16),
    "torch-bf16": lambda a: torch.from_numpy(a).to(torch.bfloat16),
    "torch-grad": lambda a: torch.from_numpy(a).requires_grad_(True) * 1,
    "torch-strided": lambda a: torch.from_numpy(np.repeat(a, 2, axis=-1))[..., ::2],
}


@pytest.mark.parametrize("kind", [
    pytest.param(k, marks=[needs_torch] if k.startswith("torch") else []) for k in _INPUTS])
def test_every_input_dtype_samples_like_float32(client, kind):
    make = _INPUTS[kind]
    rng = np.random.default_rng(3)
    batch = np.stack([_exact_rows(rng, 3000) for _ in range(3)])
    greedy = client.sample(make(batch), temperature=0)
    assert [r.token_id for r in greedy] == np.argmax(batch, axis=1).tolist()
    one = client.sample(make(batch[1]), temperature=0.9, top_p=0.9, seed=5)
    want = client.sample(batch[1], temperature=0.9, top_p=0.9, seed=5)
    assert one.token_id == want.token_id
    dist = client.distribution(make(batch[1]), temperature=0.9)
    np.testing.assert_array_equal(dist.probs, client.distribution(batch[1], temperature=0.9).probs)


@needs_torch
def test_bfloat16_is_sent_as_bfloat16(client):
    # 1 + 2^-10 is not a bfloat16: the tensor holds 1.0, so ids 0 and 1 tie and the
    # lowest wins; as float32 id 1 would win.
    values = torch.tensor([1.0, 1.0 + 2 ** -10], dtype=torch.float32)
    assert client.sample(values, temperature=0).token_id == 1
    assert client.sample(values.to(torch.bfloat16), temperature=0).token_id == 0
    assert client.sample(values.to(torch.float16), temperature=0).token_id == 1


def test_batch_with_per_row_step_and_context(client):
    logits = np.tile(np.linspace(0, 1, 64, dtype=np.float32), (3, 1))
    results = client.sample(logits, step=[0, 1, 2], context_token_ids=[[63], [], [63, 63]],
                            seed=9, repetition_penalty=2.0)
    assert [r.step for r in results] == [0, 1, 2]
    for i, r in enumerate(results):
        context = [[63], [], [63, 63]][i]
        single = client.sample(logits[i], step=i, context_token_ids=context, seed=9,
                               repetition_penalty=2.0)
        assert single.token_id == r.token_id
    dists = client.distribution(logits, context_token_ids=[63], repetition_penalty=2.0)
    assert len(dists) == 3 and dists[0].probs.size == 64
    assert client.sample(np.zeros((0, 8), np.float32)) == []


def test_server_errors_carry_code_and_field_path(client):
    with pytest.raises(SamplerError) as e:
        client.sample([1.0, 2.0], top_p=1.5)
    assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert e.value.field == "rows[0].params.top_p"
    assert e.value.message == "rows[0].params.top_p: must be in (0, 1], got 1.5"
    with pytest.raises(SamplerError) as e:
        client.sample(np.array([[1.0, 2.0], [1.0, np.nan]], np.float32))
    assert e.value.field == "rows[1].logits[1]" and "NaN" in e.value.message
    with pytest.raises(SamplerError) as e:
        client.sample([1.0, 2.0], context_token_ids=[0, 7])
    assert e.value.field == "rows[0].context_token_ids[1]"
    with pytest.raises(SamplerError) as e:
        client.sample([-math.inf, -math.inf])
    assert e.value.field == "rows[0].logits" and "masked" in e.value.message
    with pytest.raises(SamplerError) as e:
        client.sample(np.zeros((1025, 2), np.float32))
    assert e.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED and e.value.field == "rows"


def test_client_side_errors_name_the_argument(client):
    with pytest.raises(SamplerError) as e:
        client.sample(np.zeros(4, np.float64))
    assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT and e.value.field == "logits"
    assert "float64" in e.value.message
    if torch is not None:
        with pytest.raises(SamplerError, match=r"torch dtype torch.int64 is not sent"):
            client.sample(torch.zeros(4, dtype=torch.int64))
    with pytest.raises(SamplerError, match=r"logits: must be 1-D .* got shape \(1, 2, 3\)"):
        client.sample(np.zeros((1, 2, 3), np.float32))
    with pytest.raises(SamplerError, match="logits: expected a numpy array"):
        client.sample("1,2,3")
    with pytest.raises(SamplerError) as e:
        client.sample([1.0], top_k="many")
    assert e.value.field == "params.top_k" and "expected an integer, got 'many'" in str(e.value)
    with pytest.raises(SamplerError, match=r"params.preset: unknown Preset 'greedy'; one of "
                                           r"standard, hf, llama_cpp"):
        client.sample([1.0], preset="greedy")
    with pytest.raises(SamplerError, match=r"context_token_ids\[1\]: expected a token id"):
        client.sample([1.0], context_token_ids=[0, 0.5])
    with pytest.raises(TypeError, match="unknown sampling parameter 'top_q'"):
        client.sample([1.0], top_q=0.5)


def test_unset_parameters_are_off(client):
    logits = np.random.default_rng(1).normal(0, 2, 100).astype(np.float32)
    plain = client.distribution(logits)
    assert plain.probs.size == 100
    off = client.distribution(logits, temperature=None, top_k=0, top_p=None, min_p=0,
                              repetition_penalty=0, seed=None)
    np.testing.assert_array_equal(plain.probs, off.probs)
    np.testing.assert_array_equal(client.distribution(logits, top_k=5).token_ids,
                                  np.argsort(-logits, kind="stable")[:5])


def test_unreachable_server_is_unavailable():
    with tokensampler.Client("127.0.0.1:1", timeout=5) as c:
        with pytest.raises(SamplerError) as e:
            c.sample([1.0])
        assert e.value.code == grpc.StatusCode.UNAVAILABLE and e.value.field is None


def test_list_target_and_retries_reach_the_server(server):
    with tokensampler.Client(f"{server.address},{server.address}", retries=2) as c:
        assert c.sample([1.0, 3.0], temperature=0).token_id == 1
    with pytest.raises(ValueError, match=r"retries: must be in \[0, 4\], got 9"):
        tokensampler.Client(server.address, retries=9)


def test_parameter_kinds_are_read_from_the_descriptor():
    # fill_params is generic over the message's descriptor; SamplingParams has scalars,
    # enums, repeated fields and a map, Row adds message fields (as future params may).
    from tokensampler import _codec
    from tokensampler.v1 import sampler_pb2

    row = sampler_pb2.Row()
    _codec.fill_params(row, {"logits": {"values": [1.5, -2.0], "dtype": "DTYPE_FLOAT32"},
                             "context_token_ids": np.array([3, 4]), "end_sequence": 1,
                             "sequence_id": "s"}, "row")
    assert list(row.logits.values) == [1.5, -2.0] and row.logits.dtype == 1
    assert list(row.context_token_ids) == [3, 4] and row.end_sequence and row.sequence_id == "s"
    with pytest.raises(SamplerError) as e:
        _codec.fill_params(row, {"logits": {"nope": 1}}, "row")
    assert e.value.field == "row.logits" and "expected a dict for Logits" in e.value.message
    params = sampler_pb2.SamplingParams()
    _codec.fill_params(params, {"logit_bias": {np.int64(7): np.float32(-1)}, "preset": 2,
                                "logprobs_mode": "LOGPROBS_MODE_PROCESSED"}, "params")
    assert dict(params.logit_bias) == {7: -1.0}
    assert params.preset == sampler_pb2.PRESET_HF and params.logprobs_mode == 2
