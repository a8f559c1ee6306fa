#!/usr/bin/env python3
"""Writes the seed corpora of fuzz_verify and fuzz_shared_memory (tests/fuzz/corpus/).

fuzz_verify: a leading 0 byte then a VerifyRequest encoded from seeds/verify_*.txtpb with
protoc; a leading 1 byte then choices that build requests (as BuildRequest reads them).
fuzz_shared_memory: choices for a sequence of operations (as Harness::Run reads them).
The choices are written the way tests/fuzz/fuzz_data.h's FuzzedDataProvider reads them:
a value in [lo, hi] as (value - lo) in the fewest big-endian bytes that cover hi - lo.

  python3 tests/fuzz/seeds/make_seeds.py     (from the repository root; needs protoc)
"""
import pathlib
import struct
import subprocess

ROOT = pathlib.Path(__file__).resolve().parents[3]
SEEDS = ROOT / "tests/fuzz/seeds"
CORPUS = ROOT / "tests/fuzz/corpus"


class Choices:
    def __init__(self):
        self.out = bytearray()

    def range(self, lo, hi, value):
        assert lo <= value <= hi, (lo, hi, value)
        span, n = hi - lo, 0
        while (1 << (8 * n)) - 1 < span:
            n += 1
        self.out += (value - lo).to_bytes(n, "big") if n else b""
        return self

    def integral(self, size, value):
        self.out += value.to_bytes(size, "big")
        return self

    def bool(self, value):
        self.out.append(1 if value else 0)
        return self

    def string(self, max_length, data):
        self.range(0, max_length, len(data))
        self.out += data
        return self


def proto_string(field, data):
    return bytes([field << 3 | 2, len(data)]) + data


def proto_varint(field, value):
    out = bytearray([field << 3])
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


# --- fuzz_verify, built requests (BuildRequest, PutLogits, DraftProbs, PutParams) ---

def logit(c, quarter):  # ConsumeLogit: a quarter in [-40, 40]
    c.range(0, 15, 2).range(-40, 40, quarter)


def params(c, vocab, temperature=None, seed=None, top_logprobs=None, mode=None):
    bits = ((temperature is not None) << 0 | (seed is not None) << 11 |
            (top_logprobs is not None) << 13 | (mode is not None) << 14)
    c.integral(4, bits)
    if temperature is not None:
        c.range(0, 8, temperature)  # quarters
    if seed is not None:
        c.integral(8, seed)
    if top_logprobs is not None:
        c.range(-1, 21, top_logprobs)
    if mode is not None:
        c.range(0, 5, mode)


def verify_row(c, vocab, targets, drafts, probs=None, encoding=0, **kw):
    c.range(0, 15, 1).range(1, 48, vocab)  # a small V
    c.range(0, 9, len(drafts)).range(0, 31, 3)  # k, well-formed shape
    for row in targets:
        for q in row:
            logit(c, q)
        c.range(0, 15, encoding)  # 0 values, 1 f32, 2 bf16, 3 f16
    for d in drafts:
        c.range(0, 31, 1).range(0, vocab - 1, d)
    if probs is None:
        c.range(0, 2, 0)
    else:
        c.range(0, 2, 1).range(0, 31, 1)
        for weights in probs:
            for w in weights:
                c.range(0, 3, w)
            c.range(0, 15, 1)  # left valid
            c.range(0, 15, 0)  # as values
    params(c, vocab, **kw)
    c.range(0, 4, 1).range(-1, vocab, 1)  # context [1]
    c.bool(False).range(0, 64, 5)  # step 5
    c.string(4, b"s")


def verify_seeds():
    out = {}
    for txt in sorted(SEEDS.glob("verify_*.txtpb")):
        encoded = subprocess.run(
            ["protoc", "-I", str(ROOT / "proto"), "--encode=tokensampler.v1.VerifyRequest",
             "tokensampler/v1/sampler.proto"],
            input=txt.read_bytes(), capture_output=True, check=True).stdout
        out[txt.stem + ".bin"] = b"\0" + encoded
    c = Choices().range(0, 4, 1)
    verify_row(c, 6, [[4, 0, -8, 2, 2, 1]] * 3, [0, 3], temperature=3, seed=42,
               top_logprobs=2, mode=2)
    out["built_onehot.bin"] = b"\1" + bytes(c.out)
    c = Choices().range(0, 4, 2)
    verify_row(c, 5, [[1, 2, 3, 4, 5]] * 4, [4, 1, 0], probs=[[1, 0, 2, 0, 1]] * 3,
               seed=7)
    verify_row(c, 3, [[0, 8, -4]], [], encoding=2, temperature=0)
    out["built_probs_bf16.bin"] = b"\1" + bytes(c.out)
    return out


# --- fuzz_shared_memory (Harness::Run) ---

def register(c, name, key_choice, offset_pages, size_units):
    c.range(0, 9, 0)
    c.range(0, 15, 4).range(0, 3, name)  # kNames[name]
    c.range(0, 15, key_choice)  # 8: object "a", 5: object "b", 0: directory, 1: missing
    c.range(0, 8, 0).range(0, 9, 6).range(0, 2, offset_pages)  # in 4096-byte pages
    c.range(0, 8, 0).range(0, 9, 6).range(0, 2500, size_units)  # in 4-byte units


def ref(c, name, units, dtype=0, width=4, region_bytes=10000):
    c.range(0, 15, 4).range(0, 3, name).range(0, 15, dtype)
    c.range(0, 8, 0).range(0, 9, 6).range(0, region_bytes // width, units)  # offset, in widths
    c.bool(True)  # byte_size = V * width
    c.range(0, 31, 1)  # no inline values as well


def shared_memory_seeds():
    out = {}
    c = Choices()
    register(c, 0, 8, 0, 2500)  # r0: all of "a"
    register(c, 1, 5, 0, 16)  # r1: all of "b"
    c.range(0, 9, 5).range(0, 7, 1).range(1, 3, 2)  # Sample, 2 rows
    c.range(1, 8, 4)
    ref(c, 0, 8)
    params(c, 4, temperature=3, seed=1, top_logprobs=2)
    c.range(1, 8, 3)
    ref(c, 0, 7, dtype=1, width=2)  # bfloat16 at an odd 16-bit slot
    params(c, 3)
    c.range(0, 9, 7).range(1, 8, 4).range(0, 2, 2)  # Verify, V = 4, k = 2
    for units in (0, 4, 8):
        c.range(0, 3, 1)
        ref(c, 0, units)
    c.range(0, 3, 2).range(0, 3, 0)  # drafts 2, 0
    c.bool(True)
    for units in (0, 4):
        ref(c, 1, units, region_bytes=64)  # [0.25, 0.25, 0.5, 0]
    params(c, 4, seed=3)
    c.range(0, 9, 8).range(0, 9999, 5000)  # shrink "a" to 5000 bytes
    c.range(0, 7, 1).range(1, 3, 2)
    c.range(1, 8, 4)
    ref(c, 0, 2000)  # 8000: zeros past the end, same page
    params(c, 4)
    c.range(1, 8, 4)
    ref(c, 0, 2250)  # 9000: a page past the end, faults
    params(c, 4)
    c.range(0, 9, 3).range(0, 7, 1).range(0, 15, 4).range(0, 3, 0)  # unregister r0
    c.range(0, 9, 4).range(0, 3, 0)  # status of all
    c.range(0, 9, 9).string(48, b"ipv4:127.0.0.1:50051")
    out["register_sample_verify_shrink.bin"] = bytes(c.out)

    c = Choices()
    register(c, 2, 0, 0, 1)  # the directory
    register(c, 2, 1, 0, 1)  # a missing object
    register(c, 0, 8, 1, 2500)  # 10000 bytes at offset 4096: past the end of "a"
    raw = proto_string(1, b"r3") + proto_string(2, b"@b") + proto_varint(4, 64)
    c.range(0, 9, 2).string(64, raw)  # "@b": this process's "b"
    register(c, 3, 8, 0, 1)  # r3 again: already exists
    c.range(0, 9, 3).range(0, 7, 0)  # unregister all
    c.range(0, 9, 9).string(48, b"ipv6:%5B::ffff:127.0.0.1%5D:1")
    out["refusals.bin"] = bytes(c.out)
    return out


def main():
    for name, seeds in (("verify", verify_seeds()), ("shared_memory", shared_memory_seeds())):
        directory = CORPUS / name
        directory.mkdir(parents=True, exist_ok=True)
        for file_name, data in seeds.items():
            (directory / file_name).write_bytes(data)
            print(f"{directory.relative_to(ROOT)}/{file_name}: {len(data)} bytes")


if __name__ == "__main__":
    main()
