#!/usr/bin/python3
"""Zero-copy logits from Python: multiprocessing.shared_memory + grpcio over a Unix socket.

usage: python_shm_test.py --server-bin BIN --proto-dir DIR --protoc PROTOC
                          --grpc-plugin PLUGIN --out DIR

One server listens on TCP and on a Unix socket. A region is registered from Python's
multiprocessing.shared_memory, and rows sampled from it give the same tokens as the same
bytes sent as Logits.raw, for float32, bfloat16 and float16. Errors keep their codes; an
object shrunk under the server fails the call cleanly and the server stays healthy.
Reuses the stub generation and server process helpers of python_client_test.py.
"""

import argparse
import os
import sys
import tempfile
import unittest
from multiprocessing import resource_tracker, shared_memory

import numpy as np

import python_client_test as base

V = 32000


def new_object(size):
    shm = shared_memory.SharedMemory(create=True, size=size,
                                     name=f"tokensampler-pytest-{os.getpid()}-{new_object.n}")
    new_object.n += 1
    # The test unlinks its objects itself; keep Python's tracker from doing it twice.
    resource_tracker.unregister(shm._name, "shared_memory")
    return shm


new_object.n = 0


def encode(logits, dtype):
    pb2 = base.pb2
    if dtype == pb2.DTYPE_FLOAT32:
        return logits.astype("<f4").tobytes()
    if dtype == pb2.DTYPE_BFLOAT16:
        return (logits.astype(np.float32).view(np.uint32) >> 16).astype("<u2").tobytes()
    return logits.astype("<f2").tobytes()


class SharedMemoryTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.TemporaryDirectory()
        cls.socket = os.path.join(cls.dir.name, "sampler.sock")
        cls.server = base.ServerProcess(ARGS.server_bin, f"127.0.0.1:0,unix:{cls.socket}")
        cls.unix = base.grpc.insecure_channel(f"unix:{cls.socket}")
        cls.tcp = base.grpc.insecure_channel(cls.server.address)
        cls.stub = base.pb2_grpc.SamplerStub(cls.unix)
        cls.tcp_stub = base.pb2_grpc.SamplerStub(cls.tcp)

    @classmethod
    def tearDownClass(cls):
        cls.unix.close()
        cls.tcp.close()
        rc = cls.server.stop()
        cls.dir.cleanup()
        if rc != 0:
            raise AssertionError(f"server exit code {rc}:\n{cls.server.read_log()}")

    def register(self, name, shm, offset=0, size=None):
        pb2 = base.pb2
        self.stub.RegisterSharedMemory(pb2.RegisterSharedMemoryRequest(
            name=name, key="/" + shm.name, offset=offset,
            byte_size=shm.size if size is None else size), timeout=10)

    def shared_row(self, region, offset, size, dtype, seed):
        r = base.pb2.Row()
        r.logits.dtype = dtype
        r.logits.shared_memory.region = region
        r.logits.shared_memory.offset = offset
        r.logits.shared_memory.byte_size = size
        r.params.temperature = 0.8
        r.params.top_k = 50
        r.params.top_p = 0.95
        r.params.seed = seed
        return r

    def test_server_info_reports_shared_memory(self):
        info = self.stub.GetServerInfo(base.pb2.GetServerInfoRequest(), timeout=10)
        self.assertEqual(info.shared_memory_mode, base.pb2.SHARED_MEMORY_MODE_LOCAL)
        self.assertEqual(info.shared_memory_prefix, "/tokensampler")
        self.assertEqual(info.max_shared_memory_regions, 256)

    def test_same_tokens_as_raw_for_every_dtype(self):
        pb2 = base.pb2
        rng = np.random.default_rng(3)
        # Halves in [-8, 8]: exact in float32, bfloat16 and float16.
        logits = np.round(rng.normal(0, 3, size=V) * 2).clip(-16, 16).astype(np.float32) / 2
        dtypes = (pb2.DTYPE_FLOAT32, pb2.DTYPE_BFLOAT16, pb2.DTYPE_FLOAT16)
        blobs = [encode(logits, d) for d in dtypes]
        shm = new_object(sum(len(b) for b in blobs))
        try:
            self.register("py-all", shm)
            offset = 0
            for dtype, blob in zip(dtypes, blobs):
                shm.buf[offset:offset + len(blob)] = blob
                seeds = range(1, 9)
                shared = base.request(*[self.shared_row("py-all", offset, len(blob), dtype, s)
                                        for s in seeds])
                raw_rows = []
                for s in seeds:
                    r = self.shared_row("x", 0, 0, dtype, s)
                    r.logits.ClearField("shared_memory")
                    r.logits.raw = blob
                    raw_rows.append(r)
                got = self.stub.Sample(shared, timeout=30)
                want = self.tcp_stub.Sample(base.request(*raw_rows), timeout=30)
                self.assertEqual([r.samples[0].token_id for r in got.results],
                                 [r.samples[0].token_id for r in want.results],
                                 pb2.Dtype.Name(dtype))
                offset += len(blob)
            status = self.stub.GetSharedMemoryStatus(
                pb2.GetSharedMemoryStatusRequest(name="py-all"), timeout=10)
            self.assertEqual(status.regions[0].key, "/" + shm.name)
        finally:
            self.stub.UnregisterSharedMemory(
                pb2.UnregisterSharedMemoryRequest(name="py-all"), timeout=10)
            shm.close()
            shm.unlink()

    def test_errors_keep_their_codes(self):
        pb2 = base.pb2
        grpc = base.grpc
        with self.assertRaises(grpc.RpcError) as ctx:
            self.stub.Sample(base.request(self.shared_row("nope", 0, 8, pb2.DTYPE_FLOAT32, 1)),
                             timeout=10)
        self.assertEqual(ctx.exception.code(), grpc.StatusCode.NOT_FOUND)
        self.assertEqual(ctx.exception.details(),
                         'rows[0].logits.shared_memory.region: no region named "nope" is '
                         'registered')
        with self.assertRaises(grpc.RpcError) as ctx:
            self.stub.RegisterSharedMemory(pb2.RegisterSharedMemoryRequest(
                name="x", key="/not-ours", byte_size=8), timeout=10)
        self.assertEqual(ctx.exception.code(), grpc.StatusCode.PERMISSION_DENIED)

    def test_shrunk_object_fails_the_call_and_the_server_lives(self):
        pb2 = base.pb2
        grpc = base.grpc
        shm = new_object(V * 4)
        try:
            shm.buf[:V * 4] = encode(np.zeros(V, dtype=np.float32), pb2.DTYPE_FLOAT32)
            self.register("py-shrink", shm)
            ok = self.stub.Sample(base.request(
                self.shared_row("py-shrink", 0, V * 4, pb2.DTYPE_FLOAT32, 1)), timeout=10)
            self.assertEqual(len(ok.results), 1)
            os.ftruncate(shm._fd, 0)
            shm.unlink()
            with self.assertRaises(grpc.RpcError) as ctx:
                self.stub.Sample(base.request(
                    self.shared_row("py-shrink", 0, V * 4, pb2.DTYPE_FLOAT32, 1)), timeout=10)
            self.assertEqual(ctx.exception.code(), grpc.StatusCode.FAILED_PRECONDITION)
            self.assertIn("rows[0].logits.shared_memory: reading region", ctx.exception.details())
            info = self.tcp_stub.GetServerInfo(pb2.GetServerInfoRequest(), timeout=10)
            self.assertTrue(info.version)
        finally:
            self.stub.UnregisterSharedMemory(
                pb2.UnregisterSharedMemoryRequest(name="py-shrink"), timeout=10)
            shm.close()


def main():
    global ARGS
    parser = argparse.ArgumentParser()
    for name in ("--server-bin", "--proto-dir", "--protoc", "--grpc-plugin", "--out"):
        parser.add_argument(name, required=True)
    ARGS, rest = parser.parse_known_args()
    base.ARGS = ARGS
    base.generate_stubs()
    import grpc as grpc_module
    from tokensampler.v1 import sampler_pb2, sampler_pb2_grpc
    base.grpc, base.pb2, base.pb2_grpc = grpc_module, sampler_pb2, sampler_pb2_grpc
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)


ARGS = None

if __name__ == "__main__":
    main()
