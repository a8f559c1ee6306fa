#!/usr/bin/python3
"""The /metrics endpoint of the real tokensampler-server, parsed with Debian's
python3-prometheus-client (so a format mistake fails here), after known calls.

usage: python_metrics_test.py --server-bin BIN --proto-dir DIR --protoc PROTOC
                              --grpc-plugin PLUGIN --out DIR --dashboard JSON
"""

import argparse
import re
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request

import python_client_test as base
from prometheus_client.parser import text_string_to_metric_families

ARGS = None


class MetricsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.log = tempfile.NamedTemporaryFile(prefix="tokensampler-metrics-", suffix=".log")
        cls.proc = subprocess.Popen(
            [ARGS.server_bin, "--address=127.0.0.1:0", "--workers=1", "--max_rows=4",
             "--metrics_address=127.0.0.1:0"],
            stderr=cls.log, stdout=subprocess.DEVNULL)
        deadline = time.time() + 20
        while time.time() < deadline:
            with open(cls.log.name, errors="replace") as f:
                m = re.search(r"event=listening address=(\S+:\d+).*metrics_port=(\d+)", f.read())
            if m:
                cls.address, cls.metrics_port = m.group(1), int(m.group(2))
                break
            time.sleep(0.05)
        else:
            raise RuntimeError("server did not start")
        grpc = base.grpc
        cls.channel = grpc.insecure_channel(cls.address)
        stub = base.pb2_grpc.SamplerStub(cls.channel)
        # Known traffic: 3 OK Sample calls (rows: 2 standard float32, 1 hf bfloat16),
        # 1 INVALID_ARGUMENT, 1 RESOURCE_EXHAUSTED over max_rows, 1 GetDistribution.
        stub.Sample(base.request(base.row([1.0, 2.0, 3.0])), timeout=10)
        stub.Sample(base.request(base.row([1.0, 2.0, 3.0], temperature=0.0)), timeout=10)
        bf16 = base.pb2.Row()
        bf16.logits.raw = b"\x80\x3f\x00\x40"  # 1.0, 2.0 as bfloat16
        bf16.logits.dtype = base.pb2.DTYPE_BFLOAT16
        bf16.params.preset = base.pb2.PRESET_HF
        stub.Sample(base.request(bf16), timeout=10)
        for bad in (base.request(base.row([1.0], top_p=1.5)),
                    base.request(*[base.row([1.0])] * 5)):
            try:
                stub.Sample(bad, timeout=10)
            except grpc.RpcError:
                pass
        stub.GetDistribution(base.request(base.row([1.0, 2.0])), timeout=10)

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()
        cls.proc.send_signal(signal.SIGTERM)
        cls.proc.wait(timeout=30)
        cls.log.close()

    def fetch(self, path="/metrics", method="GET"):
        url = f"http://127.0.0.1:{self.metrics_port}{path}"
        with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=5) as r:
            return r.status, r.headers.get("Content-Type"), r.read().decode()

    def samples(self):
        status, content_type, body = self.fetch()
        self.assertEqual(status, 200)
        self.assertTrue(content_type.startswith("text/plain; version=0.0.4"), content_type)
        families = {f.name: f for f in text_string_to_metric_families(body)}
        return families, {(s.name, tuple(sorted(s.labels.items()))): s.value
                          for f in families.values() for s in f.samples}

    def value(self, samples, name, **labels):
        return samples.get((name, tuple(sorted(labels.items()))))

    def test_calls_by_method_and_code(self):
        families, s = self.samples()
        self.assertEqual(families["tokensampler_rpc_calls"].type, "counter")
        sampler = {"service": "tokensampler.v1.Sampler"}
        self.assertEqual(self.value(s, "tokensampler_rpc_calls_total", method="Sample",
                                    code="OK", **sampler), 3)
        self.assertEqual(self.value(s, "tokensampler_rpc_calls_total", method="Sample",
                                    code="INVALID_ARGUMENT", **sampler), 1)
        self.assertEqual(self.value(s, "tokensampler_rpc_calls_total", method="Sample",
                                    code="RESOURCE_EXHAUSTED", **sampler), 1)
        self.assertEqual(self.value(s, "tokensampler_rejected_total", limit="max_rows"), 1)

    def test_latency_histogram(self):
        families, s = self.samples()
        self.assertEqual(families["tokensampler_rpc_duration_seconds"].type, "histogram")
        labels = {"service": "tokensampler.v1.Sampler", "method": "Sample"}
        self.assertEqual(self.value(s, "tokensampler_rpc_duration_seconds_count", **labels), 5)
        self.assertEqual(self.value(s, "tokensampler_rpc_duration_seconds_bucket", le="+Inf",
                                    **labels), 5)
        self.assertGreater(self.value(s, "tokensampler_rpc_duration_seconds_sum", **labels), 0)

    def test_rows_by_preset_and_dtype(self):
        _, s = self.samples()
        # 2 Sample rows + 1 GetDistribution row, standard float32; 1 hf bfloat16.
        self.assertEqual(self.value(s, "tokensampler_rows_total", preset="standard",
                                    dtype="float32"), 3)
        self.assertEqual(self.value(s, "tokensampler_rows_total", preset="hf",
                                    dtype="bfloat16"), 1)

    def test_gauges_process_and_build_info(self):
        families, s = self.samples()
        self.assertEqual(self.value(s, "tokensampler_queue_tasks"), 0)
        self.assertEqual(self.value(s, "tokensampler_rows_in_flight"), 0)
        self.assertEqual(self.value(s, "tokensampler_stream_sequences"), 0)
        self.assertEqual(self.value(s, "tokensampler_workers"), 1)
        self.assertEqual(self.value(s, "tokensampler_serving"), 1)
        self.assertGreater(self.value(s, "process_resident_memory_bytes"), 1e6)
        self.assertGreater(self.value(s, "process_threads"), 1)
        self.assertEqual(families["process_cpu_seconds"].type, "counter")
        info = [x for x in families["tokensampler_build_info"].samples]
        self.assertEqual(len(info), 1)
        self.assertRegex(info[0].labels["version"], r"^\d+\.\d+\.\d+$")
        self.assertIn(info[0].labels["simd"], {"AVX3", "AVX3_ZEN4", "AVX2", "SSE4", "SSSE3",
                                               "EMU128", "SCALAR"})

    def test_dashboard_uses_only_exposed_metrics(self):
        # Every metric the Grafana dashboard queries is one this server exposes.
        import json
        with open(ARGS.dashboard) as f:
            dashboard = json.load(f)
        exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
        exprs += [v["definition"] for v in dashboard["templating"]["list"]]
        used = set()
        for e in exprs:
            used.update(re.findall(r"\b((?:tokensampler|process)_[a-z_]+)", e))
        _, s = self.samples()
        exposed = {name for name, _ in s}
        self.assertTrue(used)
        self.assertEqual(sorted(used - exposed), [])

    def test_other_paths_and_methods(self):
        with self.assertRaises(urllib.error.HTTPError) as caught:
            self.fetch("/")
        self.assertEqual(caught.exception.code, 404)
        with self.assertRaises(urllib.error.HTTPError) as caught:
            self.fetch("/metrics", method="POST")
        self.assertEqual(caught.exception.code, 405)


def main():
    global ARGS
    parser = argparse.ArgumentParser()
    for name in ("--server-bin", "--proto-dir", "--protoc", "--grpc-plugin", "--out",
                 "--dashboard"):
        parser.add_argument(name, required=True)
    ARGS, rest = parser.parse_known_args()
    base.load_stubs(ARGS)
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)


if __name__ == "__main__":
    main()
