#!/usr/bin/python3
"""Soak and fault test of tokensampler-server on loopback (issue 11).

usage: soak.py --server-bin BIN --proto-dir DIR --protoc PROTOC --grpc-plugin PLUGIN
               --out DIR [--duration 60] [--streams 64] [--unary 8] [--seed 1]

Starts the server (2 workers, a small queue, a 4 MiB message limit, metrics on), records
the seeded answers of a fixed set of requests and streams on a quiet server, then for
--duration seconds runs --streams concurrent SampleStream clients and --unary unary
callers that replay those requests while faults are injected at random: client
cancellations, already-expired deadlines, connections closed mid-stream, oversize
messages, bursts of wide requests beyond the queue. Then the load stops, RSS and thread
count are compared with the baseline, load restarts and the server gets SIGTERM mid-load.

Checks: every OK answer equals the recorded one (zero wrong tokens); only expected codes
(OK, CANCELLED, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, UNAVAILABLE during the stop);
health SERVING throughout the load; the process alive until SIGTERM, then exit 0 with
event=stopped; RSS within +64 MiB and threads within +8 of the baseline after the load.
Bounded: every call has a deadline, every loop checks the clock, the whole run is
capped at duration + 60 s. Exit 0 when every check holds; a JSON summary on stdout.
"""

import argparse
import collections
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

ARGS = None
grpc = pb2 = pb2_grpc = None
MIB = 1 << 20
ALLOWED = {"OK", "CANCELLED", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED"}


def proc_status(pid):
    with open(f"/proc/{pid}/status") as f:
        text = f.read()
    get = lambda k: int(re.search(rf"^{k}:\s+(\d+)", text, re.M).group(1))
    return {"rss": get("VmRSS") * 1024, "hwm": get("VmHWM") * 1024, "threads": get("Threads")}


def make_row(rng, vocab, seed, **params):
    r = pb2.Row()
    r.logits.values.extend(rng.normal(0, 3, vocab).astype(np.float32).tolist())
    r.params.seed = seed
    r.params.temperature = params.get("temperature", 0.8)
    r.params.top_p = params.get("top_p", 0.95)
    r.params.top_k = params.get("top_k", 0)
    return r


class Soak:
    def __init__(self):
        self.lock = threading.Lock()
        self.codes = collections.Counter()
        self.faults = collections.Counter()
        self.wrong = []
        self.health_bad = []
        self.stop = threading.Event()
        self.calls = 0

    def count(self, code, fault=None):
        with self.lock:
            self.codes[code] += 1
            self.calls += 1
            if fault:
                self.faults[fault] += 1

    def mismatch(self, what):
        with self.lock:
            if len(self.wrong) < 20:
                self.wrong.append(what)


def start_server(log):
    proc = subprocess.Popen(
        [ARGS.server_bin, "--address=127.0.0.1:0", "--workers=2", "--queue_depth=16",
         "--max_message_bytes=4194304", "--max_memory=268435456", "--lame_duck=500ms",
         "--drain_timeout=5s", "--metrics_address=127.0.0.1:0"],
        stderr=log, stdout=subprocess.DEVNULL)
    deadline = time.time() + 20
    while time.time() < deadline:
        with open(log.name, errors="replace") as f:
            m = re.search(r"event=listening address=(\S+:\d+)", f.read())
        if m:
            return proc, m.group(1)
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    raise RuntimeError("server did not start")


def code_name(e):
    return e.code().name if isinstance(e, grpc.RpcError) else "CLIENT_ERROR"


def unary_worker(soak, address, requests, expected, rng):
    channel = grpc.insecure_channel(address)
    stub = pb2_grpc.SamplerStub(channel)
    wide = pb2.SampleRequest(rows=[requests[0].rows[0]] * 64)
    oversize = pb2.SampleRequest(rows=[requests[0].rows[0]] * 0)
    big = pb2.Row()
    big.logits.raw = b"\x00\x00" * (3 << 20)  # 6 MiB of bf16 zeros: over the 4 MiB limit
    big.logits.dtype = pb2.DTYPE_BFLOAT16
    oversize.rows.append(big)
    while not soak.stop.is_set():
        k = rng.randrange(len(requests))
        fault = rng.random()
        try:
            if fault < 0.05:
                soak.count(code_name_call(lambda: stub.Sample(oversize, timeout=5)), "oversize")
            elif fault < 0.10:
                soak.count(code_name_call(lambda: stub.Sample(requests[k], timeout=1e-6)),
                           "expired_deadline")
            elif fault < 0.15:
                future = stub.Sample.future(requests[k], timeout=5)
                time.sleep(rng.random() * 0.002)
                future.cancel()
                try:
                    check(soak, future.result(), expected[k], f"unary {k}")
                    soak.count("OK", "cancel")
                except grpc.FutureCancelledError:
                    soak.count("CANCELLED", "cancel")
                except grpc.RpcError as e:
                    soak.count(code_name(e), "cancel")
            elif fault < 0.20:
                futures = [stub.Sample.future(wide, timeout=5) for _ in range(8)]
                for f in futures:
                    try:
                        f.result()
                        soak.count("OK", "burst")
                    except grpc.RpcError as e:
                        soak.count(code_name(e), "burst")
            else:
                response = stub.Sample(requests[k], timeout=5)
                check(soak, response, expected[k], f"unary {k}")
                soak.count("OK")
        except grpc.RpcError as e:
            soak.count(code_name(e))
    channel.close()


def code_name_call(fn):
    try:
        fn()
        return "OK"
    except grpc.RpcError as e:
        return code_name(e)


def tokens_of(response):
    return [tuple(s.token_id for s in r.samples) for r in response.results]


def check(soak, response, expected, what):
    if tokens_of(response) != expected:
        soak.mismatch(what)


def stream_worker(soak, address, messages, expected, rng):
    while not soak.stop.is_set():
        channel = grpc.insecure_channel(address)
        stub = pb2_grpc.SamplerStub(channel)
        fault = rng.random()
        # Abrupt disconnect / cancel after a random number of steps.
        cut = rng.randrange(1, len(messages)) if fault < 0.2 else None
        sequence = f"s{rng.randrange(1 << 30)}"

        def gen():
            for m in messages:
                msg = pb2.SampleRequest()
                msg.CopyFrom(m)
                for row in msg.rows:
                    row.sequence_id = sequence
                yield msg

        call = stub.SampleStream(gen(), timeout=10)
        got = []
        try:
            for response in call:
                got.append(tokens_of(response))
                if cut is not None and len(got) == cut:
                    if fault < 0.1:
                        call.cancel()
                        soak.count("CANCELLED", "stream_cancel")
                    else:
                        channel.close()
                        soak.count("CANCELLED", "disconnect")
                    break
            else:
                soak.count("OK")
        except grpc.RpcError as e:
            soak.count(code_name(e), "stream_error")
        if got != expected[:len(got)]:
            soak.mismatch(f"stream step {len(got)}")
        channel.close()


def health_worker(soak, address):
    channel = grpc.insecure_channel(address)
    check_call = channel.unary_unary("/grpc.health.v1.Health/Check",
                                     request_serializer=lambda _: b"",
                                     response_deserializer=lambda b: b)
    while not soak.stop.is_set():
        try:
            if check_call(None, timeout=2) != b"\x08\x01":
                soak.health_bad.append("not SERVING")
        except grpc.RpcError as e:
            soak.health_bad.append(code_name(e))
        time.sleep(0.1)
    channel.close()


def run_load(address, requests, expected, messages, stream_expected, duration, seed):
    soak = Soak()
    threads = [threading.Thread(target=health_worker, args=(soak, address))]
    for i in range(ARGS.unary):
        threads.append(threading.Thread(target=unary_worker, args=(
            soak, address, requests, expected, random.Random(seed * 1000 + i))))
    for i in range(ARGS.streams):
        threads.append(threading.Thread(target=stream_worker, args=(
            soak, address, messages, stream_expected, random.Random(seed * 1000 + 500 + i))))
    for t in threads:
        t.daemon = True
        t.start()
    return soak, threads


def main():
    global ARGS, grpc, pb2, pb2_grpc
    parser = argparse.ArgumentParser()
    for name in ("--server-bin", "--proto-dir", "--protoc", "--grpc-plugin", "--out"):
        parser.add_argument(name, required=True)
    parser.add_argument("--duration", type=float, default=60)
    parser.add_argument("--streams", type=int, default=64)
    parser.add_argument("--unary", type=int, default=8)
    parser.add_argument("--seed", type=int, default=1)
    ARGS = parser.parse_args()
    hard_stop = time.time() + ARGS.duration + 60
    os.makedirs(ARGS.out, exist_ok=True)
    subprocess.run([ARGS.protoc, f"--proto_path={ARGS.proto_dir}", f"--python_out={ARGS.out}",
                    f"--grpc_out={ARGS.out}", f"--plugin=protoc-gen-grpc={ARGS.grpc_plugin}",
                    os.path.join(ARGS.proto_dir, "tokensampler", "v1", "sampler.proto")],
                   check=True)
    sys.path.insert(0, ARGS.out)
    import grpc as grpc_module
    from tokensampler.v1 import sampler_pb2, sampler_pb2_grpc
    grpc, pb2, pb2_grpc = grpc_module, sampler_pb2, sampler_pb2_grpc

    rng = np.random.default_rng(ARGS.seed)
    requests = []
    for k in range(16):
        vocab = [256, 4096, 32000][k % 3]
        requests.append(pb2.SampleRequest(rows=[make_row(rng, vocab, 1000 + k * 10 + j)
                                                for j in range(1 + k % 3)]))
    messages = []
    for step in range(8):
        row = make_row(rng, 4096, 77, top_k=50)
        row.ClearField("params")
        row.params.seed = 77
        row.params.temperature = 0.9
        row.params.top_k = 50
        row.params.repetition_penalty = 1.3
        if step == 0:
            row.context_token_ids.extend([1, 2, 3])
        messages.append(pb2.SampleRequest(rows=[row]))

    log = tempfile.NamedTemporaryFile(prefix="tokensampler-soak-", suffix=".log")
    proc, address = start_server(log)
    summary = {"duration_s": ARGS.duration, "streams": ARGS.streams, "unary": ARGS.unary}
    failures = []
    try:
        # The seeded answers, on a quiet server.
        with grpc.insecure_channel(address) as channel:
            stub = pb2_grpc.SamplerStub(channel)
            expected = [tokens_of(stub.Sample(r, timeout=10)) for r in requests]
            def one_stream():
                def gen():
                    for m in messages:
                        msg = pb2.SampleRequest()
                        msg.CopyFrom(m)
                        msg.rows[0].sequence_id = "reference"
                        yield msg
                return [tokens_of(r) for r in stub.SampleStream(gen(), timeout=10)]
            stream_expected = one_stream()
            if one_stream() != stream_expected:
                failures.append("a stream does not replay on a quiet server")
        time.sleep(0.5)
        base = proc_status(proc.pid)
        summary["baseline_rss_mib"] = round(base["rss"] / MIB, 1)
        summary["baseline_threads"] = base["threads"]

        soak, threads = run_load(address, requests, expected, messages, stream_expected,
                                 ARGS.duration, ARGS.seed)
        end = min(time.time() + ARGS.duration, hard_stop)
        while time.time() < end:
            if proc.poll() is not None:
                failures.append(f"server died during the load, exit {proc.returncode}")
                break
            time.sleep(0.2)
        soak.stop.set()
        for t in threads:
            t.join(timeout=15)
        summary["calls"] = soak.calls
        summary["codes"] = dict(soak.codes)
        summary["faults"] = dict(soak.faults)
        summary["wrong_tokens"] = len(soak.wrong)
        summary["peak_rss_mib"] = round(proc_status(proc.pid)["hwm"] / MIB, 1)
        if soak.wrong:
            failures.append(f"wrong tokens: {soak.wrong[:5]}")
        unexpected = {c: n for c, n in soak.codes.items() if c not in ALLOWED}
        if unexpected:
            failures.append(f"unexpected codes: {unexpected}")
        if soak.health_bad:
            failures.append(f"health not SERVING under load: {soak.health_bad[:5]}")
        if soak.codes.get("OK", 0) == 0:
            failures.append("no call succeeded")

        # Back near the baseline once the load is gone.
        time.sleep(2)
        after = proc_status(proc.pid)
        summary["after_rss_mib"] = round(after["rss"] / MIB, 1)
        summary["after_threads"] = after["threads"]
        if after["rss"] > base["rss"] + 64 * MIB:
            failures.append(f"RSS {after['rss'] / MIB:.0f} MiB, baseline {base['rss'] / MIB:.0f}")
        if after["threads"] > base["threads"] + 8:
            failures.append(f"threads {after['threads']}, baseline {base['threads']}")

        # SIGTERM mid-load.
        ARGS.streams, ARGS.unary = max(1, ARGS.streams // 4), max(1, ARGS.unary // 2)
        soak2, threads2 = run_load(address, requests, expected, messages, stream_expected,
                                   5, ARGS.seed + 1)
        time.sleep(1.0)
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            code = None
            failures.append("server did not stop within 20 s of SIGTERM")
        soak2.stop.set()
        for t in threads2:
            t.join(timeout=15)
        summary["sigterm_exit"] = code
        summary["sigterm_codes"] = dict(soak2.codes)
        if code != 0:
            failures.append(f"exit code {code} after SIGTERM")
        if soak2.wrong:
            failures.append(f"wrong tokens during the stop: {soak2.wrong[:5]}")
        with open(log.name, errors="replace") as f:
            text = f.read()
        if "event=stopped" not in text:
            failures.append("no event=stopped line")
        summary["log_lines"] = text.count("\n")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    summary["failures"] = failures
    print(json.dumps(summary, indent=1))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
