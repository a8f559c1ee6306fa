#!/usr/bin/python3
"""Runs the same rows through PyTorch on the CPU and through tokensampler, prints ratios.

What a user would otherwise write (Debian's python3-torch, run under /usr/bin/python3):
  softmax:        torch.softmax(logits / T, -1)
  top-p pipeline: logits / T, sort descending, softmax, cumsum, mask where the mass before
                  a token already reaches p, scatter back, softmax, multinomial
  full pipeline:  the same with torch.topk(50) first and min-p 0.05
Ours (in-process, Google Benchmark on the same rows, read from a temporary .npy):
  dense/normalised (the dense softmax), pipeline/t_topp95, pipeline/t_topk50_topp95_minp05.

Usage: bench/torch_compare.py BUILD_DIR [--vocab 128256] [--rows 8] [--threads 1]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

T = 0.8
TOP_P = 0.95
TOP_K = 50
MIN_P = 0.05


def torch_softmax(x):
    return torch.softmax(x / T, dim=-1)


def torch_top_p(x, generator):
    z = x / T
    sorted_z, order = torch.sort(z, dim=-1, descending=True)
    probs = torch.softmax(sorted_z, dim=-1)
    cum = torch.cumsum(probs, dim=-1)
    remove = (cum - probs) >= TOP_P  # mass before the token already reaches p
    sorted_z = sorted_z.masked_fill(remove, float("-inf"))
    z = torch.empty_like(z).scatter_(-1, order, sorted_z)
    return torch.multinomial(torch.softmax(z, dim=-1), 1, generator=generator)


def torch_full(x, generator):
    z = x / T
    top_z, top_i = torch.topk(z, TOP_K, dim=-1)  # sorted, descending
    probs = torch.softmax(top_z, dim=-1)
    cum = torch.cumsum(probs, dim=-1)
    remove = (cum - probs) >= TOP_P
    remove |= probs < MIN_P * probs[..., :1]
    top_z = top_z.masked_fill(remove, float("-inf"))
    pick = torch.multinomial(torch.softmax(top_z, dim=-1), 1, generator=generator)
    return top_i.gather(-1, pick)


def time_per_row(fn, x, min_seconds=1.0):
    """Seconds per row: repeat fn(x) on the whole batch for at least min_seconds."""
    fn(x)  # warm up
    reps, start = 0, time.perf_counter()
    while True:
        fn(x)
        reps += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds and reps >= 3:
            return elapsed / reps / x.shape[0]


def ours_per_row(build_dir, npy_path, threads):
    binary = os.path.join(build_dir, "bench", "sampler_benchmark")
    env = dict(os.environ, TOKENSAMPLER_BENCH_NPY=npy_path)
    out = subprocess.run(
        [binary, "--benchmark_format=json", "--benchmark_min_time=0.5",
         f"--benchmark_filter=(dense/normalised|pipeline/t_topp95|pipeline/t_topk50_topp95_minp05|"
         f"limit/maxexpsum)/npy/.*threads:{threads}$"],
        env=env, check=True, capture_output=True, text=True).stdout
    result = {}
    for b in json.loads(out)["benchmarks"]:
        name = b["name"].split("/npy/")[0]
        result[name] = 1.0 / b["items_per_second"]
    return result


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("build_dir")
    ap.add_argument("--vocab", type=int, default=128256)
    ap.add_argument("--rows", type=int, default=8)
    ap.add_argument("--threads", type=int, default=1, help="torch threads and ours")
    ap.add_argument("--sigma", type=float, default=3.0)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(20261128)
    rows = (rng.standard_normal((args.rows, args.vocab)) * args.sigma).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "rows.npy")
        np.save(path, rows)
        ours = ours_per_row(args.build_dir, path, args.threads)

    x = torch.from_numpy(rows)
    gen = torch.Generator().manual_seed(1)
    theirs = {
        "softmax": time_per_row(torch_softmax, x),
        "top-p pipeline": time_per_row(lambda t: torch_top_p(t, gen), x),
        "top-k+top-p+min-p pipeline": time_per_row(lambda t: torch_full(t, gen), x),
    }
    pairs = [
        ("softmax", "dense/normalised", 2.0),
        ("top-p pipeline", "pipeline/t_topp95", 50.0),
        ("top-k+top-p+min-p pipeline", "pipeline/t_topk50_topp95_minp05", None),
    ]
    print(f"# torch {torch.__version__}, threads {args.threads}, rows {args.rows} x V "
          f"{args.vocab}, N(0, {args.sigma}) logits, T {T}")
    print(f"# our limit kernel (max + exp-sum): {ours['limit/maxexpsum'] * 1e6:.1f} us/row")
    print(f"{'what':30s} {'torch us/row':>13s} {'ours us/row':>12s} {'speed-up':>9s}  target")
    for label, ours_name, target in pairs:
        t, o = theirs[label], ours[ours_name]
        ratio = t / o
        verdict = "" if target is None else (
            f">= {target:g}x " + ("MET" if ratio >= target else f"MISSED by {target / ratio:.2f}x"))
        print(f"{label:30s} {t * 1e6:13.1f} {o * 1e6:12.1f} {ratio:8.1f}x  {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
