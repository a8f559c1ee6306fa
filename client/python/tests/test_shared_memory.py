"""Client.shared_logits: logits in a registered POSIX shared memory region, against a real
tokensampler-server reached over its Unix socket (--shared_memory=local, the default)."""

import asyncio
import glob
import os
import re
import signal
import subprocess
import sys
import textwrap
import time

import grpc
import numpy as np
import pytest

import tokensampler
import tokensampler.aio
from tokensampler import SamplerError
from tokensampler.v1 import sampler_pb2 as pb2
from tokensampler.v1 import sampler_pb2_grpc as pb2_grpc

import conftest
from docs_example import docs_example

try:
    import torch
except ImportError:  # the torch cases skip; scripts/install-deps.sh --test brings it
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="needs torch (python3-torch)")

V = 32000
PARAMS = dict(temperature=0.8, top_k=50, top_p=0.95, min_p=0.05)
DTYPES = {"float32": np.float32, "float16": np.float16}


@pytest.fixture
def uclient(server):
    with tokensampler.Client(server.unix_address, timeout=30) as c:
        yield c


@pytest.fixture
def status(server):
    """GetSharedMemoryStatus through the generated stub: {name: key} of every region."""
    channel = grpc.insecure_channel(server.unix_address)
    stub = pb2_grpc.SamplerStub(channel)

    def regions():
        response = stub.GetSharedMemoryStatus(pb2.GetSharedMemoryStatusRequest(), timeout=10)
        return {r.name: r.key for r in response.regions}

    regions.stub = stub
    yield regions
    channel.close()


def _exact(rng, shape):
    """Halves in [-8, 8]: exact in float32, float16 and bfloat16, so every dtype sends the
    same numbers."""
    return (np.round(rng.normal(0, 3, size=shape) * 2).clip(-16, 16) / 2).astype(np.float32)


def _dev_shm(key):
    return os.path.join("/dev/shm", key.lstrip("/"))


def _our_objects():
    return set(glob.glob(f"/dev/shm/tokensampler-py-{os.getpid()}-*"))


def test_server_info_names_mode_and_prefix(uclient):
    info = uclient.server_info()
    assert info.shared_memory_mode == "SHARED_MEMORY_MODE_LOCAL"
    assert info.shared_memory_prefix == "/tokensampler"
    assert info.max_shared_memory_regions == 256 and info.max_shared_memory_bytes == 16 << 30


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_same_tokens_as_raw_bytes(uclient, client, status, dtype):
    rng = np.random.default_rng(11)
    batch = _exact(rng, (4, V))
    with uclient.shared_logits(4, V, dtype) as shared:
        assert shared.array.shape == (4, V) and shared.array.flags.writeable
        assert shared.array.dtype == {"float32": "<f4", "float16": "<f2",
                                      "bfloat16": "<u2"}[dtype]
        assert status()[shared.name] == shared.key and shared.key.startswith("/tokensampler-")
        assert os.path.getsize(_dev_shm(shared.key)) == shared.nbytes == 4 * V * {
            "float32": 4, "float16": 2, "bfloat16": 2}[dtype]
        shared.write(batch)
        # The same rows as raw bytes of the same dtype, over TCP (bfloat16 via torch, else
        # float32: the values are exact in every dtype).
        raw = batch.astype(DTYPES[dtype]) if dtype in DTYPES else (
            torch.from_numpy(batch).to(torch.bfloat16) if torch is not None else batch)
        for seed in (1, 2, 3):
            got = uclient.sample(shared, seed=seed, num_samples=3, **PARAMS)
            want = client.sample(raw, seed=seed, num_samples=3, **PARAMS)
            assert [r.token_ids.tolist() for r in got] == [r.token_ids.tolist() for r in want]
            np.testing.assert_array_equal(np.stack([r.logprobs for r in got]),
                                          np.stack([r.logprobs for r in want]))
        one = uclient.sample(shared[2], step=5, seed=9, **PARAMS)
        assert one.token_id == client.sample(raw[2], step=5, seed=9, **PARAMS).token_id
        assert one.step == 5 and not isinstance(one, list)
        part = uclient.sample(shared[1:3], step=[0, 1], seed=4, **PARAMS)
        assert [r.token_id for r in part] == [
            client.sample(raw[i], step=i - 1, seed=4, **PARAMS).token_id for i in (1, 2)]
        assert uclient.sample(shared[::-2], temperature=0)[0].token_id == int(np.argmax(batch[3]))
        dist = uclient.distribution(shared[0], **PARAMS)
        np.testing.assert_array_equal(dist.probs, client.distribution(raw[0], **PARAMS).probs)
        dists = uclient.distribution(shared, temperature=0.7)
        assert len(dists) == 4
        np.testing.assert_array_equal(dists[3].token_ids,
                                      client.distribution(raw[3], temperature=0.7).token_ids)
    assert shared.name not in status()


def test_a_large_batch_of_128k_rows(uclient, client):
    rows, vocab = 16, 128256
    logits = np.random.default_rng(5).normal(0, 3, (rows, vocab)).astype(np.float32)
    with uclient.shared_logits(rows, vocab) as shared:
        shared.array[:] = logits
        got = uclient.sample(shared, seed=77, **PARAMS)
    want = client.sample(logits, seed=77, **PARAMS)
    assert [r.token_id for r in got] == [r.token_id for r in want]


def test_rewriting_the_view_changes_the_result(uclient):
    with uclient.shared_logits(2, 1000, "float16") as shared:
        for target in (5, 999, 0, 321):
            shared.array[:] = 0
            shared.array[0, target] = 4
            shared.array[1, (target + 1) % 1000] = 4
            got = uclient.sample(shared, temperature=0)
            assert [r.token_id for r in got] == [target, (target + 1) % 1000]
        # Masking a token in place: row 0's best token is gone, the next one wins.
        shared.array[0, 321] = -np.inf
        shared.array[0, 7] = 3
        assert uclient.sample(shared[0], temperature=0).token_id == 7


def test_sessions_over_shared_memory_match_raw_sessions(uclient, client):
    rng = np.random.default_rng(21)
    steps = [_exact(rng, (2, 3000)) for _ in range(6)]
    params = dict(temperature=0.9, top_p=0.95, repetition_penalty=1.5, presence_penalty=0.5)
    prompts = {"a": [3, 3, 17], "b": [5]}
    with client.session() as session:  # raw bytes over TCP
        want = [session.step({"a": s[0], "b": s[1]}, seed=7, params={"b": {"seed": 8}},
                             context_token_ids=prompts if k == 0 else None, **params)
                for k, s in enumerate(steps)]
    with uclient.shared_logits(2, 3000, "bfloat16") as shared, uclient.session() as session:
        for k, s in enumerate(steps):
            shared.write(s)  # the model writes this step's logits, then the step is sent
            got = session.step({"a": shared[0], "b": shared[1]}, seed=7,
                               params={"b": {"seed": 8}},
                               context_token_ids=prompts if k == 0 else None, **params)
            for sid in "ab":
                assert (got[sid].token_id, got[sid].step, got[sid].seed) == (
                    want[k][sid].token_id, want[k][sid].step, want[k][sid].seed), (k, sid)
        session.step({"a": shared[1]}, end=["a", "b"])


def test_write_converts_without_changing_values(uclient):
    with uclient.shared_logits(1, 8, "bfloat16") as shared:
        # Known bfloat16 bits: 1.0; 1 + 2^-8 (a tie: to even, 1.0); 1 + 3 * 2^-8 (a tie: up
        # to even); -2.5; the largest float32 (rounds to inf); -inf; a NaN stays NaN.
        values = np.array([1.0, 1 + 2 ** -8, 1 + 3 * 2 ** -8, -2.5, 3.4028235e38, -np.inf,
                           np.nan, 2 ** -130], np.float32)
        shared[0].write(values)
        bits = shared.array[0]
        assert bits[:6].tolist() == [0x3F80, 0x3F80, 0x3F82, 0xC020, 0x7F80, 0xFF80]
        assert bits[6] & 0x7F80 == 0x7F80 and bits[6] & 0x7F
        assert bits[7] == 0x0008  # a subnormal (2^-130), rounded like any other value
        shared.write([[0.5] * 8])  # lists and float64 arrays too
        assert shared.array[0].tolist() == [0x3F00] * 8
        shared.write(np.full((1, 8), -1.0))
        assert shared.array[0].tolist() == [0xBF80] * 8
    with uclient.shared_logits(2, 3, np.float16) as shared:
        shared[1].write(np.array([1, 2, 0.1], np.float64))
        assert shared.array[1].tolist() == [1, 2, np.float16(0.1)] and shared.dtype == "float16"


@needs_torch
def test_write_torch_tensors_matches_torch_rounding(uclient):
    rng = np.random.default_rng(2)
    values = np.concatenate([rng.normal(0, 3, 5000), rng.normal(0, 1e30, 100),
                             [1 + 2 ** -8, 1 + 3 * 2 ** -8, -(1 + 2 ** -8), 6e-39, -np.inf]])
    values = values.astype(np.float32)
    expected = torch.from_numpy(values).to(torch.bfloat16)
    with uclient.shared_logits(2, values.size, torch.bfloat16) as shared:
        shared[0].write(values)  # NumPy float32, converted in NumPy
        shared[1].write(expected)  # a torch bfloat16 tensor, copied bit for bit
        want = expected.view(torch.int16).numpy().view(np.uint16)
        np.testing.assert_array_equal(shared.array[0], want)
        np.testing.assert_array_equal(shared.array[1], want)
        # And sampling it equals sending the tensor itself as raw bfloat16 bytes.
        got = uclient.sample(shared[1], seed=3, **PARAMS)
        assert got.token_id == uclient.sample(expected, seed=3, **PARAMS).token_id
    with uclient.shared_logits(1, 4, "float32") as shared:
        shared.write(torch.tensor([[1.5, -2.0, 3.0, 0.25]], dtype=torch.float64,
                                  requires_grad=True) * 1)
        assert shared.array[0].tolist() == [1.5, -2.0, 3.0, 0.25]
        with pytest.raises(SamplerError, match="values: expected a floating-point tensor"):
            shared.write(torch.zeros(1, 4, dtype=torch.int64))


def test_close_releases_everything(uclient, status):
    before = _our_objects()
    shared = uclient.shared_logits(3, 100)
    key, name = shared.key, shared.name
    assert os.path.exists(_dev_shm(key)) and name in status()
    view = shared.array  # a view the caller still holds after close()
    shared.close()
    assert name not in status() and not os.path.exists(_dev_shm(key))
    assert shared.closed and _our_objects() == before
    shared.close()  # twice is harmless
    view[0, 0] = 1.0  # still mapped in this process (unmapped when the view goes)
    with pytest.raises(SamplerError) as e:
        uclient.sample(shared, temperature=0)
    assert e.value.code == grpc.StatusCode.FAILED_PRECONDITION and e.value.field == "logits"
    assert e.value.message == f"logits: shared logits {name!r} are closed"
    with pytest.raises(SamplerError, match="are closed"):
        shared.array
    row = shared[0]
    with uclient.session() as session:
        with pytest.raises(SamplerError) as e:
            session.step({"a": row})
        assert e.value.field == "rows['a']" and "are closed" in e.value.message
        assert session.step({"a": np.zeros(3, np.float32)}, seed=1)["a"].step == 0  # not sent


def test_with_releases_after_a_failed_call(uclient, status):
    with pytest.raises(SamplerError) as e:
        with uclient.shared_logits(2, 10) as shared:
            shared.array[:] = 0
            shared.array[1, 4] = np.nan
            uclient.sample(shared)
    assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert e.value.field == "rows[1].logits[4]" and "NaN" in e.value.message
    assert shared.closed and shared.name not in status()
    assert not os.path.exists(_dev_shm(shared.key))


def test_close_unlinks_even_when_unregister_fails():
    own = conftest.ServerProcess()
    client = tokensampler.Client(own.unix_address, timeout=5)
    shared = client.shared_logits(1, 10)
    assert own.stop() == 0
    with pytest.raises(SamplerError) as e:
        shared.close()
    assert e.value.code == grpc.StatusCode.UNAVAILABLE
    assert shared.closed and not os.path.exists(_dev_shm(shared.key))
    shared.close()
    client.close()


def test_closing_the_client_closes_its_shared_logits(server, status):
    client = tokensampler.Client(server.unix_address, timeout=30)
    a, b = client.shared_logits(1, 10), client.shared_logits(2, 10, "bfloat16")
    b.close()
    client.close()
    assert a.closed and {a.name, b.name}.isdisjoint(status())
    assert not os.path.exists(_dev_shm(a.key))


def test_region_unregistered_elsewhere_is_not_found_and_close_still_works(uclient, status):
    shared = uclient.shared_logits(1, 10)
    status.stub.UnregisterSharedMemory(pb2.UnregisterSharedMemoryRequest(name=shared.name),
                                       timeout=10)
    with pytest.raises(SamplerError) as e:
        uclient.sample(shared[0])
    assert e.value.code == grpc.StatusCode.NOT_FOUND
    assert e.value.field == "rows[0].logits.shared_memory.region"
    assert e.value.message == (f"rows[0].logits.shared_memory.region: no region named "
                               f"\"{shared.name}\" is registered")
    shared.close()  # NOT_FOUND from Unregister: already gone, not an error
    assert not os.path.exists(_dev_shm(shared.key))


def test_shrunk_object_is_failed_precondition(uclient):
    shared = uclient.shared_logits(2, 1000)
    shared.array[:] = 0
    assert len(uclient.sample(shared, temperature=0)) == 2
    path = _dev_shm(shared.key)
    os.truncate(path, 0)  # the array must not be touched now: its pages are gone
    with pytest.raises(SamplerError) as e:
        uclient.sample(shared[1], temperature=0)
    assert e.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert e.value.field == "rows[0].logits.shared_memory"
    assert "reading region" in e.value.message
    shared.close()
    assert not os.path.exists(path) and uclient.health() is tokensampler.HealthStatus.SERVING


def test_registration_errors_are_sampler_errors_and_leave_nothing(uclient, status):
    before = _our_objects()
    with pytest.raises(SamplerError) as e:
        uclient.shared_logits(1, 10, prefix="/elsewhere")
    assert e.value.code == grpc.StatusCode.PERMISSION_DENIED and e.value.field == "key"
    assert "--shared_memory_prefix \"/tokensampler\"" in e.value.message
    with uclient.shared_logits(1, 10, name="step-logits") as shared:
        with pytest.raises(SamplerError) as e:
            uclient.shared_logits(1, 10, name="step-logits")
        assert e.value.code == grpc.StatusCode.ALREADY_EXISTS and e.value.field == "name"
        assert status()["step-logits"] == shared.key
    # A prefix with characters a region name may not have: the default name replaces them.
    with uclient.shared_logits(1, 10, prefix="/tokensampler:odd+chars") as shared:
        assert shared.key.startswith("/tokensampler:odd+chars-py-")
        assert shared.name == "tokensampler_odd_chars" + shared.key[len("/tokensampler:odd+chars"):]
        assert status()[shared.name] == shared.key
    with pytest.raises(SamplerError) as e:
        uclient.shared_logits(1, 10, name="no spaces")
    assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT and e.value.field == "name"
    assert _our_objects() == before and "step-logits" not in status()


def test_bad_arguments_are_refused_before_anything_is_created(uclient):
    before = _our_objects()
    for kwargs, field, text in [
            (dict(rows=0, vocab=10), "rows", "expected an integer >= 1, got 0"),
            (dict(rows=1, vocab=2.5), "vocab", "got 2.5"),
            (dict(rows=1, vocab=4, dtype="float64"), "dtype",
             "expected float32, float16 or bfloat16, got 'float64'"),
            (dict(rows=1, vocab=4, dtype=np.int16), "dtype", "got <class 'numpy.int16'>")]:
        with pytest.raises(SamplerError) as e:
            uclient.shared_logits(**kwargs)
        assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT and e.value.field == field
        assert text in e.value.message
    assert _our_objects() == before
    with uclient.shared_logits(2, 4) as shared:
        with pytest.raises(SamplerError, match=r"values: shape \(4,\) does not match the rows' "
                                               r"\(2, 4\)"):
            shared.write(np.zeros(4, np.float32))
        with pytest.raises(SamplerError, match="values: expected floating-point values, got "
                                               "numpy dtype int64"):
            shared[0].write(np.zeros(4, np.int64))
        with pytest.raises(IndexError, match="row 2 out of range for 2 rows"):
            shared[2]
        with pytest.raises(TypeError):
            shared["a"]
        assert shared[-1].array.shape == (4,) and len(shared) == 2


def test_shared_memory_off_is_permission_denied(uclient):
    off = conftest.ServerProcess("--shared_memory=off")
    before = _our_objects()
    try:
        with tokensampler.Client(off.unix_address, timeout=10) as client:
            assert client.server_info().shared_memory_mode == "SHARED_MEMORY_MODE_OFF"
            with pytest.raises(SamplerError) as e:
                client.shared_logits(1, 10)
            assert e.value.code == grpc.StatusCode.PERMISSION_DENIED
            assert "off on this server (--shared_memory=off)" in e.value.message
            assert _our_objects() == before
            # Rows naming a region (registered with the other server) get it too.
            with uclient.shared_logits(1, 10) as elsewhere:
                with pytest.raises(SamplerError) as e:
                    client.sample(elsewhere[0])
            assert e.value.code == grpc.StatusCode.PERMISSION_DENIED
            assert e.value.field == "rows[0].logits.shared_memory.region"
    finally:
        assert off.stop() == 0
    assert _our_objects() == before


def test_no_resource_tracker_warnings_and_nothing_left_at_exit(server, status):
    # One object closed, one left to the garbage collector at exit: stderr stays empty
    # (no "leaked shared_memory objects" warning) and /dev/shm keeps neither.
    code = textwrap.dedent("""
        import sys, tokensampler
        client = tokensampler.Client(sys.argv[1])
        with client.shared_logits(1, 10) as closed:
            pass
        kept = client.shared_logits(2, 10)
        print(closed.key, kept.key, kept.name)
    """)
    out = subprocess.run([sys.executable, "-c", code, server.unix_address], env=_env(),
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stderr == "", out.stderr
    closed_key, kept_key, kept_name = out.stdout.split()
    assert not os.path.exists(_dev_shm(closed_key)) and not os.path.exists(_dev_shm(kept_key))
    # Not closed: the server still has the region (of an unlinked object) until told.
    assert kept_name in status()
    status.stub.UnregisterSharedMemory(pb2.UnregisterSharedMemoryRequest(name=kept_name),
                                       timeout=10)


def test_a_killed_process_leaves_no_object(server, status):
    code = textwrap.dedent("""
        import sys, time, tokensampler
        shared = tokensampler.Client(sys.argv[1]).shared_logits(1, 10)
        print(shared.key, shared.name, flush=True)
        time.sleep(60)
    """)
    with subprocess.Popen([sys.executable, "-c", code, server.unix_address], env=_env(),
                          stdout=subprocess.PIPE, text=True) as proc:
        key, name = proc.stdout.readline().split()
        assert os.path.exists(_dev_shm(key))
        proc.send_signal(signal.SIGKILL)
    # Python's resource tracker (a process of its own) unlinks what the dead one left.
    deadline = time.time() + 20
    while os.path.exists(_dev_shm(key)) and time.time() < deadline:
        time.sleep(0.05)
    assert not os.path.exists(_dev_shm(key))
    status.stub.UnregisterSharedMemory(pb2.UnregisterSharedMemoryRequest(name=name), timeout=10)


def test_aio_shared_logits(server, client, status):
    rng = np.random.default_rng(8)
    steps = [_exact(rng, (2, 500)) for _ in range(3)]
    with client.session() as session:
        want = [session.step({"a": s[0], "b": s[1]}, seed=5, **PARAMS) for s in steps]

    async def run():
        async with tokensampler.aio.Client(server.unix_address, timeout=30) as aclient:
            async with aclient.shared_logits(2, 500, "bfloat16") as shared:
                assert shared.name in status()
                shared.write(steps[0])
                got = await aclient.sample(shared, seed=5, **PARAMS)
                assert [r.token_id for r in got] == [
                    client.sample(steps[0][i], seed=5, **PARAMS).token_id for i in (0, 1)]
                dist = await aclient.distribution(shared[1], **PARAMS)
                assert dist.replay(5, 0) == got[1].token_id
                async with aclient.session() as session:
                    for k, s in enumerate(steps):
                        shared.write(s)
                        out = await session.step({"a": shared[0], "b": shared[1]}, seed=5,
                                                 **PARAMS)
                        assert {i: r.token_id for i, r in out.items()} == {
                            i: r.token_id for i, r in want[k].items()}
            assert shared.closed and shared.name not in status()
            with pytest.raises(SamplerError, match="are closed"):
                await aclient.sample(shared)
            with pytest.raises(SamplerError) as e:
                async with aclient.shared_logits(1, 10) as bad:
                    bad.array[0, 0] = np.inf
                    await aclient.sample(bad)
            assert e.value.field == "rows[0].logits[0]"
            assert bad.closed and not os.path.exists(_dev_shm(bad.key))
            awaited = await aclient.shared_logits(1, 10)
            left = await aclient.shared_logits(1, 10, "float16")
            await awaited.close()
            await awaited.close()
        assert left.closed and {awaited.name, left.name, bad.name}.isdisjoint(status())
        assert not os.path.exists(_dev_shm(left.key))

    asyncio.run(run())


def test_docs_shared_memory_example_runs(server, status):
    code = docs_example("### Shared memory")
    assert len(code.strip().splitlines()) <= 12
    out = subprocess.run([sys.executable, "-c", code],
                         env=_env(TOKENSAMPLER_SERVER=server.unix_address),
                         capture_output=True, text=True, timeout=120, cwd=conftest.REPO)
    assert out.returncode == 0 and out.stderr == "", out.stderr
    assert re.fullmatch(r"(\[\d+, \d+\]\n){2}", out.stdout), out.stdout  # two steps, two rows
    assert not status()


def _env(**extra):
    return dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p), **extra)
