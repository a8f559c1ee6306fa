"""Decode sessions (SampleStream) through tokensampler.Client.session()."""

import asyncio

import grpc
import numpy as np
import pytest

import tokensampler
import tokensampler.aio
from tokensampler import SamplerError

PARAMS = dict(temperature=0.9, top_p=0.95, repetition_penalty=1.5, presence_penalty=0.5)


def _steps(seed, n=6, vocab=300):
    rng = np.random.default_rng(seed)
    return [rng.normal(0, 2, size=vocab).astype(np.float32) for _ in range(n)]


def test_session_tokens_replay_and_equal_stateless_calls(client):
    rows = {"a": _steps(1), "b": _steps(2)}
    prompts = {"a": [3, 3, 17], "b": [5]}
    history = {k: list(v) for k, v in prompts.items()}
    with client.session() as session:
        for k in range(6):
            out = session.step({sid: steps[k] for sid, steps in rows.items()},
                               params={"b": {"seed": 8}}, seed=7,
                               context_token_ids=prompts if k == 0 else None, **PARAMS)
            assert list(out) == ["a", "b"]
            for sid, result in out.items():
                assert result.sequence_id == sid and result.step == k
                assert result.seed == {"a": 7, "b": 8}[sid]
                dist = client.distribution(rows[sid][k], context_token_ids=history[sid],
                                           **PARAMS)
                assert tokensampler.replay(dist.token_ids, dist.probs, result.seed,
                                           k) == result.token_id, f"{sid} step {k}"
                again = client.sample(rows[sid][k], step=k, context_token_ids=history[sid],
                                      seed=result.seed, **PARAMS)
                assert again.token_id == result.token_id
                history[sid].append(result.token_id)


def test_end_frees_a_sequence_and_it_restarts_at_step_zero(client):
    row = np.zeros(10, np.float32)
    with client.session() as session:
        assert session.step({"a": row}, seed=1)["a"].step == 0
        out = session.step({"a": row, "b": row}, seed=2, end=["a"])
        assert (out["a"].step, out["b"].step) == (1, 0)
        assert session.step({"a": row}, seed=3)["a"].step == 0  # a new sequence
        assert session.step({"a": row})["a"].seed == 3
        session.end("a", "b")
        freed = session.step({"b": row}, seed=4)["b"]
        assert (freed.step, freed.seed) == (0, 4)
        only_end = session.step({}, end=["b"])
        assert only_end["b"].token_ids.size == 0
        with pytest.raises(ValueError, match="has no samples"):
            only_end["b"].token_id


def test_session_error_names_field_and_sequence_then_stays_broken(client):
    session = client.session()
    session.step({"x": np.zeros(4, np.float32)}, seed=1)
    bad = {"x": np.zeros(4, np.float32), "y": np.array([0, np.nan], np.float32)}
    with pytest.raises(SamplerError) as e:
        session.step(bad)
    assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert e.value.field == "rows[1].logits[1]" and e.value.sequence_id == "y"
    with pytest.raises(SamplerError) as again:  # the server ended the stream
        session.step({"x": np.zeros(4, np.float32)})
    assert again.value is e.value
    session.close()


def test_session_rejects_bad_input_before_sending(client):
    with client.session() as session:
        with pytest.raises(SamplerError, match=r"rows\['a'\]: a session row must be 1-D"):
            session.step({"a": np.zeros((2, 3), np.float32)})
        with pytest.raises(SamplerError, match=r"params\['b'\]: no row for this sequence"):
            session.step({"a": np.zeros(3, np.float32)}, params={"b": {"seed": 1}})
        # Nothing was sent: the stream still works.
        assert session.step({"a": np.zeros(3, np.float32)}, seed=1)["a"].step == 0


def test_closed_session_refuses_steps(client):
    session = client.session()
    session.close()
    with pytest.raises(SamplerError) as e:
        session.step({"a": np.zeros(3, np.float32)})
    assert e.value.code == grpc.StatusCode.FAILED_PRECONDITION


def test_aio_client_and_session_match_sync(client, server):
    rows = _steps(5, n=4)
    with client.session() as session:
        want = [session.step({"s": r}, seed=11, **PARAMS)["s"].token_id for r in rows]

    async def run():
        async with tokensampler.aio.Client(server.address, timeout=30) as aclient:
            assert await aclient.health() is tokensampler.HealthStatus.SERVING
            info = await aclient.server_info()
            assert info.version == tokensampler.__version__
            one = await aclient.sample(rows[0], seed=3, temperature=0.7)
            dist = await aclient.distribution(rows[0], temperature=0.7)
            assert dist.replay(3, 0) == one.token_id
            with pytest.raises(SamplerError) as e:
                await aclient.sample(rows[0], top_p=1.5)
            assert e.value.field == "rows[0].params.top_p"
            got = []
            async with aclient.session() as s:
                for r in rows:
                    got.append((await s.step({"s": r}, seed=11, **PARAMS))["s"].token_id)
                await s.end("s")
            async with aclient.session() as s:
                with pytest.raises(SamplerError) as e:
                    await s.step({"s": rows[0], "t": np.array([np.nan], np.float32)})
                assert e.value.field == "rows[1].logits[0]" and e.value.sequence_id == "t"
            return got

    assert asyncio.run(run()) == want
