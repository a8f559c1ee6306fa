#!/usr/bin/python3
"""An independent Python client of tokensampler.v1.Sampler, run against the real server.

usage: python_client_test.py --server-bin BIN --proto-dir DIR --protoc PROTOC
                             --grpc-plugin PLUGIN --out DIR

Stubs are generated with protoc + grpc_python_plugin into --out (a build-tree folder) at
test time. Checks: greedy == numpy argmax; a seeded token equals a pure-Python replay of
the draw in the README ("The draw": Philox4x32-10, 53-bit uniform, inverse CDF over
GetDistribution's probabilities in ascending id order); INVALID_ARGUMENT names the field;
a stream's tokens are reproducible by stateless calls; grpc.health.v1 reports SERVING.
"""

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import unittest

import numpy as np

ARGS = None
pb2 = None
pb2_grpc = None
grpc = None

MASK32 = 0xFFFFFFFF


# --- the draw, written from the specification --------------------------------------------

def philox4x32_10(counter, key):
    """Philox4x32-10 (Salmon et al., SC 2011): 4 counter words, 2 key words -> 4 words."""
    c0, c1, c2, c3 = counter
    k0, k1 = key
    for rnd in range(10):
        if rnd > 0:
            k0 = (k0 + 0x9E3779B9) & MASK32
            k1 = (k1 + 0xBB67AE85) & MASK32
        p0 = 0xD2511F53 * c0
        p1 = 0xCD9E8D57 * c2
        hi0, lo0 = p0 >> 32, p0 & MASK32
        hi1, lo1 = p1 >> 32, p1 & MASK32
        c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
    return c0, c1, c2, c3


def uniform(seed, step, index):
    key = (seed & MASK32, seed >> 32)
    counter = (step & MASK32, step >> 32, index, 0)
    w0, w1, _, _ = philox4x32_10(counter, key)
    return ((w0 >> 5) * 2.0 ** 26 + (w1 >> 6)) / 2.0 ** 53


def draw(token_ids, probs, seed, step, index):
    """Inverse CDF in ascending token-id order, accumulated in double precision."""
    pairs = sorted((t, float(p)) for t, p in zip(token_ids, probs) if p > 0)
    cum = []
    total = 0.0
    for _, p in pairs:
        total += p
        cum.append(total)
    target = uniform(seed, step, index) * total
    for (tok, _), c in zip(pairs, cum):
        if c > target:
            return tok
    return pairs[-1][0]


# --- helpers ---------------------------------------------------------------------------------

def row(logits, **params):
    r = pb2.Row()
    r.logits.values.extend(np.asarray(logits, dtype=np.float32).tolist())
    context = params.pop("context", None)
    step = params.pop("step", None)
    sequence_id = params.pop("sequence_id", None)
    for name, value in params.items():
        setattr(r.params, name, value)
    if context:
        r.context_token_ids.extend(context)
    if step is not None:
        r.step = step
    if sequence_id is not None:
        r.sequence_id = sequence_id
    return r


def request(*rows):
    req = pb2.SampleRequest()
    req.rows.extend(rows)
    return req


class ServerProcess:
    def __init__(self, binary, address="127.0.0.1:0"):
        """Starts `binary` on `address` (a --address value; its first entry must be TCP)."""
        self.log = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(
            [binary, f"--address={address}", "--workers=2", "--drain_timeout=5s"],
            stderr=self.log, stdout=subprocess.DEVNULL)
        deadline = time.time() + 20
        self.address = None
        while time.time() < deadline and self.address is None:
            if self.proc.poll() is not None:
                raise RuntimeError("server exited early:\n" + self.read_log())
            m = re.search(r"event=listening address=(\S+:\d+)", self.read_log())
            if m:
                self.address = m.group(1)
            else:
                time.sleep(0.05)
        if self.address is None:
            self.proc.kill()
            raise RuntimeError("no event=listening line:\n" + self.read_log())

    def read_log(self):
        self.log.seek(0)
        return self.log.read()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return None


# --- the tests -------------------------------------------------------------------------------

class DrawSpecTest(unittest.TestCase):
    """The Python draw against the specification's known answers (no server)."""

    def test_philox_known_answers(self):
        self.assertEqual(philox4x32_10((0, 0, 0, 0), (0, 0)),
                         (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8))
        self.assertEqual(philox4x32_10((MASK32,) * 4, (MASK32, MASK32)),
                         (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD))
        self.assertEqual(
            philox4x32_10((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
                          (0xA4093822, 0x299F31D0)),
            (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1))

    def test_uniform_known_answers(self):
        self.assertEqual(uniform(0, 0, 0), 0.39904647231489565)
        self.assertEqual(uniform(42, 0, 0), 0.6129598801477738)
        self.assertEqual(uniform(42, 1, 0), 0.9877186516453577)
        self.assertEqual(uniform(42, 0, 1), 0.010058843540026619)
        self.assertEqual(uniform(2 ** 64 - 1, 2 ** 40 + 3, 7), 0.3960849721535957)

    def test_draw_walks_ids_in_ascending_order(self):
        # u(42, 0, 0) = 0.61...: cumulative over ids 0, 1, 2 = 0.5, 0.75, 1.0 -> id 1.
        self.assertEqual(draw([2, 0, 1], [0.25, 0.5, 0.25], 42, 0, 0), 1)
        self.assertEqual(draw([5], [1.0], 42, 1, 0), 5)


class ServerTest(unittest.TestCase):
    server = None
    channel = None
    stub = None

    @classmethod
    def setUpClass(cls):
        cls.server = ServerProcess(ARGS.server_bin)
        options = [("grpc.max_send_message_length", 256 << 20),
                   ("grpc.max_receive_message_length", 256 << 20)]
        cls.channel = grpc.insecure_channel(cls.server.address, options=options)
        cls.stub = pb2_grpc.SamplerStub(cls.channel)

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()
        rc = cls.server.stop()
        if rc != 0:
            raise AssertionError(f"server exit code {rc} on SIGTERM:\n{cls.server.read_log()}")

    def test_health_serving(self):
        check = self.channel.unary_unary(
            "/grpc.health.v1.Health/Check",
            request_serializer=lambda b: b, response_deserializer=lambda b: b)
        # HealthCheckResponse{status: SERVING} is field 1 varint 1.
        self.assertEqual(check(b"", timeout=10), b"\x08\x01")
        service = b"tokensampler.v1.Sampler"
        self.assertEqual(check(b"\x0a" + bytes([len(service)]) + service, timeout=10),
                         b"\x08\x01")

    def test_server_info(self):
        info = self.stub.GetServerInfo(pb2.GetServerInfoRequest(), timeout=10)
        self.assertTrue(info.version)
        self.assertGreaterEqual(info.max_vocab, 128256)
        self.assertIn(pb2.PRESET_HF, info.presets)

    def test_greedy_is_numpy_argmax(self):
        rng = np.random.default_rng(2024)
        rows = [rng.normal(0, 3, size=v).astype(np.float32) for v in (7, 1000, 32000, 128256)]
        tied = np.zeros(100, dtype=np.float32)
        tied[[13, 57, 99]] = 5.0  # ties go to the lowest id, like numpy.argmax
        rows.append(tied)
        resp = self.stub.Sample(request(*[row(r, temperature=0.0) for r in rows]), timeout=30)
        self.assertEqual(len(resp.results), len(rows))
        for r, result in zip(rows, resp.results):
            self.assertEqual(result.samples[0].token_id, int(np.argmax(r)))

    def test_raw_bfloat16_greedy(self):
        rng = np.random.default_rng(5)
        logits = rng.normal(0, 3, size=50000).astype(np.float32)
        # bf16 by truncation of values that are exactly representable: no rounding question.
        bf16 = (logits.view(np.uint32) >> 16).astype(np.uint16)
        exact = (bf16.astype(np.uint32) << 16).view(np.float32)
        r = pb2.Row()
        r.logits.raw = bf16.astype("<u2").tobytes()
        r.logits.dtype = pb2.DTYPE_BFLOAT16
        r.params.temperature = 0.0
        resp = self.stub.Sample(request(r), timeout=30)
        self.assertEqual(resp.results[0].samples[0].token_id, int(np.argmax(exact)))

    def test_seeded_tokens_replay_in_python(self):
        rng = np.random.default_rng(7)
        configs = [
            dict(temperature=0.8, top_k=50, top_p=0.95, min_p=0.05),
            dict(temperature=1.3),
            dict(temperature=0.7, top_p=0.9),
            dict(typical_p=0.9, min_tokens_to_keep=3),
            dict(temperature=1.0, preset=pb2.PRESET_HF, top_k=20),
        ]
        checked = 0
        for i, cfg in enumerate(configs):
            logits = rng.normal(0, 3, size=2000).astype(np.float32)
            for seed, step in ((1, 0), (42, 9), (2 ** 63 + 5, 2 ** 33 + 1)):
                params = dict(cfg, seed=seed, step=step, num_samples=3)
                dist = self.stub.GetDistribution(request(row(logits, **params)), timeout=30)
                sample = self.stub.Sample(request(row(logits, **params)), timeout=30)
                d = dist.distributions[0]
                result = sample.results[0]
                self.assertEqual(result.seed, seed)
                self.assertEqual(result.step, step)
                self.assertAlmostEqual(sum(d.probs), 1.0, places=4)
                for index, s in enumerate(result.samples):
                    want = draw(d.token_ids, d.probs, seed, step, index)
                    self.assertEqual(s.token_id, want,
                                     f"config {i} seed {seed} step {step} index {index}")
                    checked += 1
        self.assertEqual(checked, len(configs) * 3 * 3)

    def test_server_picked_seed_replays(self):
        logits = np.linspace(-2, 2, 500).astype(np.float32)
        first = self.stub.Sample(request(row(logits, temperature=1.0, step=3)), timeout=10)
        seed = first.results[0].seed
        dist = self.stub.GetDistribution(request(row(logits, temperature=1.0)), timeout=10)
        d = dist.distributions[0]
        self.assertEqual(first.results[0].samples[0].token_id,
                         draw(d.token_ids, d.probs, seed, 3, 0))

    def test_invalid_argument_names_the_field(self):
        with self.assertRaises(grpc.RpcError) as ctx:
            self.stub.Sample(request(row([1.0, 2.0], top_p=1.5)), timeout=10)
        self.assertEqual(ctx.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("rows[0].params.top_p", ctx.exception.details())
        with self.assertRaises(grpc.RpcError) as ctx:
            self.stub.Sample(request(row([1.0]), row([1.0], top_p=1.5)), timeout=10)
        self.assertIn("rows[1].params.top_p", ctx.exception.details())

    def test_stream_is_reproducible_statelessly(self):
        rng = np.random.default_rng(11)
        steps = [rng.normal(0, 2, size=300).astype(np.float32) for _ in range(5)]
        prompt = [3, 3, 17]
        common = dict(temperature=0.9, repetition_penalty=1.5, presence_penalty=0.5, seed=99)

        def messages():
            for k, logits in enumerate(steps):
                extra = dict(context=prompt) if k == 0 else {}
                r = row(logits, sequence_id="a", **common, **extra)
                r.end_sequence = k == len(steps) - 1
                yield request(r)

        responses = list(self.stub.SampleStream(messages(), timeout=30))
        self.assertEqual(len(responses), len(steps))
        generated = []
        for k, resp in enumerate(responses):
            result = resp.results[0]
            self.assertEqual(result.sequence_id, "a")
            self.assertEqual(result.step, k)
            self.assertEqual(result.seed, 99)
            token = result.samples[0].token_id
            # The same token from a stateless call with the history the stream kept.
            again = self.stub.Sample(
                request(row(steps[k], context=prompt + generated, step=k, **common)),
                timeout=10)
            self.assertEqual(again.results[0].samples[0].token_id, token, f"step {k}")
            generated.append(token)


def generate_stubs():
    os.makedirs(ARGS.out, exist_ok=True)
    cmd = [ARGS.protoc, f"--proto_path={ARGS.proto_dir}", f"--python_out={ARGS.out}",
           f"--grpc_out={ARGS.out}", f"--plugin=protoc-gen-grpc={ARGS.grpc_plugin}",
           os.path.join(ARGS.proto_dir, "tokensampler", "v1", "sampler.proto")]
    subprocess.run(cmd, check=True)
    sys.path.insert(0, ARGS.out)


def load_stubs(args):
    """Generates the stubs for `args` (--protoc, --grpc-plugin, --proto-dir, --out) and
    sets this module's grpc, pb2 and pb2_grpc (for the other e2e Python tests)."""
    global ARGS, pb2, pb2_grpc, grpc
    ARGS = args
    generate_stubs()
    import grpc as grpc_module
    from tokensampler.v1 import sampler_pb2, sampler_pb2_grpc
    grpc, pb2, pb2_grpc = grpc_module, sampler_pb2, sampler_pb2_grpc


def main():
    parser = argparse.ArgumentParser()
    for name in ("--server-bin", "--proto-dir", "--protoc", "--grpc-plugin", "--out"):
        parser.add_argument(name, required=True)
    args, rest = parser.parse_known_args()
    load_stubs(args)
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)


if __name__ == "__main__":
    main()
