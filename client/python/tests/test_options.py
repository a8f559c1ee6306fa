"""Client options against an in-process Python gRPC server: deadlines (unary and per
session step), metadata sent with every call, and TLS through `credentials`."""

import asyncio
import shutil
import subprocess
import threading
from concurrent import futures

import grpc
import numpy as np
import pytest

import tokensampler
import tokensampler.aio
from tokensampler import SamplerError
from tokensampler.v1 import sampler_pb2 as pb2
from tokensampler.v1 import sampler_pb2_grpc as pb2_grpc


class Silent(pb2_grpc.SamplerServicer):
    """Answers GetServerInfo at once (recording metadata); never answers a sample."""

    def __init__(self):
        self.metadata = []
        self.release = threading.Event()

    def GetServerInfo(self, request, context):
        self.metadata.append(dict(context.invocation_metadata()))
        return pb2.ServerInfo(version="fake", instance="fake:1")

    def Sample(self, request, context):
        self.release.wait(10)
        return pb2.SampleResponse()

    def SampleStream(self, request_iterator, context):
        for _ in request_iterator:
            self.release.wait(10)
            if not context.is_active():
                return


@pytest.fixture
def silent():
    servicer = Silent()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    pb2_grpc.add_SamplerServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield servicer, f"127.0.0.1:{port}"
    servicer.release.set()
    server.stop(0)


def test_unary_deadline(silent):
    _, address = silent
    with tokensampler.Client(address, timeout=0.3) as client:
        with pytest.raises(SamplerError) as e:
            client.sample([1.0])
        assert e.value.code == grpc.StatusCode.DEADLINE_EXCEEDED


def test_session_step_deadline_cancels_the_stream(silent):
    _, address = silent
    with tokensampler.Client(address, timeout=0.3) as client:
        session = client.session()
        with pytest.raises(SamplerError) as e:
            session.step({"a": np.zeros(3, np.float32)})
        assert e.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
        assert "no response within 0.3 s" in e.value.message
        with pytest.raises(SamplerError) as again:
            session.step({"a": np.zeros(3, np.float32)})
        assert again.value is e.value
        session.close()


def test_aio_session_step_deadline(silent):
    _, address = silent

    async def run():
        async with tokensampler.aio.Client(address, timeout=0.3) as client:
            async with client.session() as session:
                with pytest.raises(SamplerError) as e:
                    await session.step({"a": np.zeros(3, np.float32)})
                assert e.value.code == grpc.StatusCode.DEADLINE_EXCEEDED

    asyncio.run(run())


def test_metadata_is_sent_with_every_call(silent):
    servicer, address = silent
    with tokensampler.Client(address, metadata=[("authorization", "Bearer t0k")]) as client:
        assert client.server_info().version == "fake"
        client.server_info()

    async def run():
        async with tokensampler.aio.Client(address, metadata=[("x-tenant", "a")]) as client:
            await client.server_info()

    asyncio.run(run())
    assert [m.get("authorization") for m in servicer.metadata] == ["Bearer t0k"] * 2 + [None]
    assert servicer.metadata[2].get("x-tenant") == "a"


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_tls_through_credentials(tmp_path):
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    pb2_grpc.add_SamplerServicer_to_server(Silent(), server)
    port = server.add_secure_port("localhost:0", grpc.ssl_server_credentials(
        [(key.read_bytes(), cert.read_bytes())]))
    server.start()
    try:
        trusted = grpc.ssl_channel_credentials(root_certificates=cert.read_bytes())
        with tokensampler.Client(f"localhost:{port}", credentials=trusted) as client:
            assert client.server_info().instance == "fake:1"
        with tokensampler.Client(f"localhost:{port}", timeout=5) as plaintext:
            with pytest.raises(SamplerError) as e:
                plaintext.server_info()
            assert e.value.code == grpc.StatusCode.UNAVAILABLE
    finally:
        server.stop(0)
