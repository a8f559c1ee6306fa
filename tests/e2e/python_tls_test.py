#!/usr/bin/python3
"""TLS, mutual TLS, certificate rotation and bearer tokens from Python's grpcio, against
the real tokensampler-server binary.

usage: python_tls_test.py --server-bin BIN --make-certs SCRIPT --proto-dir DIR --protoc PROTOC
                          --grpc-plugin PLUGIN --out DIR

A throwaway PKI is generated with tests/tls/make_test_certs.sh (openssl) into a temporary
folder; stubs are generated as in python_client_test.py.
"""

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

import python_client_test as base

ARGS = None
PKI = None
TOKEN = "py-test-token-5b0c"


def read(name):
    with open(os.path.join(PKI, name), "rb") as f:
        return f.read()


class Server:
    """tokensampler-server with TLS flags; the key and certificate come through a
    `live` symlink so that a test can swap them atomically."""

    def __init__(self, *flags):
        self.dir = tempfile.mkdtemp(prefix="tokensampler-pytls-")
        for version, prefix in (("v1", "server"), ("v2", "other_server")):
            os.makedirs(os.path.join(self.dir, version))
            for ext in ("pem", "key"):
                shutil.copy(os.path.join(PKI, f"{prefix}.{ext}"),
                            os.path.join(self.dir, version, f"server.{ext}"))
        os.symlink(os.path.join(self.dir, "v1"), os.path.join(self.dir, "live"))
        self.tokens = os.path.join(self.dir, "tokens")
        with open(self.tokens, "w") as f:
            f.write(f"# test tokens\n{TOKEN}\n")
        live = os.path.join(self.dir, "live")
        self.log_path = os.path.join(self.dir, "server.log")
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [ARGS.server_bin, "--address=127.0.0.1:0", "--workers=1",
             f"--tls_cert={live}/server.pem", f"--tls_key={live}/server.key",
             "--tls_reload_interval=1s", f"--auth_token_file={self.tokens}",
             "--health_address=127.0.0.1:0", *flags],
            stderr=self.log, stdout=subprocess.DEVNULL)
        deadline = time.time() + 20
        while time.time() < deadline:
            m = re.search(r"event=listening address=(\S+:\d+).*health_address=(\S+:\d+)",
                          self.read_log())
            if m:
                self.address, self.health_address = m.group(1), m.group(2)
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError("no event=listening line:\n" + self.read_log())

    def rotate(self):
        tmp = os.path.join(self.dir, "live.new")
        os.symlink(os.path.join(self.dir, "v2"), tmp)
        os.replace(tmp, os.path.join(self.dir, "live"))

    def read_log(self):
        with open(self.log_path, "r", errors="replace") as f:
            return f.read()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def info(address, creds=None, token=None, timeout=5):
    grpc = base.grpc
    channel = (grpc.secure_channel(address, creds) if creds is not None
               else grpc.insecure_channel(address))
    with channel:
        stub = base.pb2_grpc.SamplerStub(channel)
        metadata = [("authorization", f"Bearer {token}")] if token else None
        return stub.GetServerInfo(base.pb2.GetServerInfoRequest(), timeout=timeout,
                                  metadata=metadata)


def tls(ca="ca.pem", cert=None):
    return base.grpc.ssl_channel_credentials(
        root_certificates=read(ca),
        private_key=read(cert + ".key") if cert else None,
        certificate_chain=read(cert + ".pem") if cert else None)


class TlsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Server()

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        log = cls.server.read_log() if os.path.exists(cls.server.log_path) else ""
        assert TOKEN not in log

    def code(self, fn):
        with self.assertRaises(base.grpc.RpcError) as caught:
            fn()
        return caught.exception.code()

    def test_tls_with_token(self):
        self.assertTrue(info(self.server.address, tls(), TOKEN).version)

    def test_plaintext_client_fails(self):
        self.assertEqual(self.code(lambda: info(self.server.address, None, TOKEN)),
                         base.grpc.StatusCode.UNAVAILABLE)

    def test_missing_or_wrong_token_is_unauthenticated(self):
        U = base.grpc.StatusCode.UNAUTHENTICATED
        self.assertEqual(self.code(lambda: info(self.server.address, tls())), U)
        self.assertEqual(self.code(lambda: info(self.server.address, tls(), "nope")), U)
        # The call-credentials way (grpc.access_token_call_credentials) works too.
        creds = base.grpc.composite_channel_credentials(
            tls(), base.grpc.access_token_call_credentials(TOKEN))
        self.assertTrue(info(self.server.address, creds).version)

    def test_health_without_token(self):
        grpc = base.grpc
        for channel in (grpc.secure_channel(self.server.address, tls()),
                        grpc.insecure_channel(self.server.health_address)):
            with channel:
                check = channel.unary_unary(
                    "/grpc.health.v1.Health/Check",
                    request_serializer=lambda _: b"", response_deserializer=lambda b: b)
                # HealthCheckResponse{status: SERVING} = field 1, varint 1.
                self.assertEqual(check(None, timeout=5), b"\x08\x01")


class MutualTlsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Server(f"--tls_client_ca={os.path.join(PKI, 'ca.pem')}")

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def code(self, fn):
        with self.assertRaises(base.grpc.RpcError) as caught:
            fn()
        return caught.exception.code()

    def test_client_certificate_required_and_verified(self):
        UNAVAILABLE = base.grpc.StatusCode.UNAVAILABLE
        self.assertEqual(self.code(lambda: info(self.server.address, tls(), TOKEN)), UNAVAILABLE)
        self.assertEqual(
            self.code(lambda: info(self.server.address, tls(cert="other_client"), TOKEN)),
            UNAVAILABLE)
        self.assertTrue(info(self.server.address, tls(cert="client"), TOKEN).version)

    def test_rotation_without_restart(self):
        # Last in this class (alphabetical): the server moves to the other CA's certificate.
        self.assertTrue(info(self.server.address, tls(cert="client"), TOKEN).version)
        self.server.rotate()
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                info(self.server.address, tls(ca="other_ca.pem", cert="client"), TOKEN)
                break
            except base.grpc.RpcError:
                time.sleep(0.2)
        else:
            self.fail("the rotated certificate was never served")
        self.assertEqual(self.code(lambda: info(self.server.address, tls(cert="client"), TOKEN)),
                         base.grpc.StatusCode.UNAVAILABLE)


def main():
    global ARGS, PKI
    parser = argparse.ArgumentParser()
    for name in ("--server-bin", "--make-certs", "--proto-dir", "--protoc", "--grpc-plugin",
                 "--out"):
        parser.add_argument(name, required=True)
    ARGS, rest = parser.parse_known_args()
    base.load_stubs(ARGS)
    workdir = tempfile.mkdtemp(prefix="tokensampler-pki-")
    try:
        PKI = os.path.join(workdir, "pki")
        subprocess.run(["sh", ARGS.make_certs, PKI], check=True)
        result = unittest.main(argv=[sys.argv[0]] + rest, verbosity=2, exit=False).result
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    sys.exit(0 if result.wasSuccessful() else 1)


if __name__ == "__main__":
    main()
