#!/usr/bin/env python3
"""Ratios to the limit kernel from sampler_benchmark's JSON output.

Usage:
  build/bench/sampler_benchmark --benchmark_format=json > out.json
  bench/summarise.py out.json [--markdown] [--cpu]

With --benchmark_repetitions=N every figure is the median of the N repetitions.
Every benchmark is named <group>/<config>/<rows>/V:<V>/batch:<B>[/bf16]/real_time/threads:<T>.
Its cost per row is compared with limit/maxexpsum of the same rows, V, batch and
threads: ratio = (time per row) / (limit's time per row). By default time is wall time
(throughput over all threads); --cpu uses CPU time per row instead, which is steadier
when other jobs share the machine (for threads:1 the two agree on a quiet machine).
"""

import argparse
import json
import re
import statistics
import sys
from collections import defaultdict

NAME = re.compile(
    r"^(?P<group>[a-z_]+)/(?P<config>[a-z0-9_]+)/(?P<rows>normal|peaked|npy)/V:(?P<v>\d+)"
    r"/batch:(?P<batch>\d+)(?P<bf16>/bf16)?(?:/iterations:\d+)?(?:/real_time)?"
    r"(?:/threads:(?P<threads>\d+))?$")

# Issue 4's in-process targets at V=128256, one thread, sigma-3 ("normal") rows.
TARGETS = [
    ("pipeline/t_topk50_topp95_minp05", 1.5, "T + top-k 50 + top-p 0.95 (+ min-p 0.05) + draw"),
    ("pipeline/t_topp95", 2.5, "T + top-p 0.95 alone"),
    ("pipeline/greedy", 0.3, "greedy"),
    ("pipeline/t", 1.5, "T only, draw over the whole vocabulary"),
    ("dense/normalised", 1.5, "full normalised distribution (dense, before sorting)"),
]


def print_table(header, lines, markdown):
    """One table: markdown, or plain columns padded to their widest cell."""
    if markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for cells in lines:
            print("| " + " | ".join(cells) + " |")
        return
    widths = [max(len(str(c[i])) for c in [header] + lines) for i in range(len(header))]
    for cells in [header] + lines:
        print("  ".join(str(c).ljust(w) for c, w in zip(cells, widths)))


def per_row_seconds(bench, cpu):
    """Seconds of one row: wall time from aggregated throughput, or CPU time per row."""
    threads = int(bench.get("threads", 1))
    rows = float(bench.get("rows", 1)) / threads  # the rows counter sums over threads
    unit = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}[bench.get("time_unit", "ns")]
    if cpu:
        return bench["cpu_time"] * unit / rows
    if "items_per_second" in bench and bench["items_per_second"] > 0:
        return 1.0 / bench["items_per_second"]
    return bench["real_time"] * unit / rows / threads


def load(path):
    with open(path) as f:
        data = json.load(f)
    return data.get("context", {}), [
        b for b in data["benchmarks"] if b.get("run_type", "iteration") == "iteration"
    ]


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("json_file")
    ap.add_argument("--markdown", action="store_true", help="print markdown tables")
    ap.add_argument("--cpu", action="store_true", help="use CPU time per row")
    args = ap.parse_args()
    context, benches = load(args.json_file)

    # (group/config, rows, v, batch, dtype, threads) -> seconds per row: the median over
    # --benchmark_repetitions (each repetition is one "iteration" entry of the JSON).
    samples = defaultdict(list)
    for b in benches:
        m = NAME.match(b["name"])
        if not m:
            continue
        key = (m["group"] + "/" + m["config"], m["rows"], int(m["v"]), int(m["batch"]),
               "bf16" if m["bf16"] else "f32", int(m["threads"] or 1))
        samples[key].append(per_row_seconds(b, args.cpu))
    rows = {key: statistics.median(values) for key, values in samples.items()}

    def ratio(name, kind, v, batch, dtype, threads):
        t = rows.get((name, kind, v, batch, dtype, threads))
        lim = rows.get(("limit/maxexpsum", kind, v, batch, "f32", threads))
        if t is None or lim is None:
            return None, t
        return t / lim, t

    print(f"# simd_target={context.get('simd_target', '?')} "
          f"time={'cpu' if args.cpu else 'wall'} host_cpus={context.get('num_cpus', '?')} "
          f"mhz={context.get('mhz_per_cpu', '?')}")

    names = sorted({k[0] for k in rows if k[0] != "limit/maxexpsum"})
    kinds = sorted({k[1] for k in rows})
    vocabs = sorted({k[2] for k in rows})
    batches = sorted({k[3] for k in rows})
    threads_list = sorted({k[5] for k in rows})

    for kind in kinds:
        for threads in threads_list:
            for batch in batches:
                header = ["config"] + [f"V={v}" for v in vocabs]
                lines = []
                lim_cells = ["limit us/row"]
                for v in vocabs:
                    t = rows.get(("limit/maxexpsum", kind, v, batch, "f32", threads))
                    lim_cells.append("-" if t is None else f"{t * 1e6:.1f}")
                lines.append(lim_cells)
                for name in names:
                    for dtype in ("f32", "bf16"):
                        cells = [name + ("/bf16" if dtype == "bf16" else "")]
                        any_value = False
                        for v in vocabs:
                            r, t = ratio(name, kind, v, batch, dtype, threads)
                            if r is None:
                                cells.append("-")
                            else:
                                any_value = True
                                cells.append(f"{r:.2f}x ({t * 1e6:.0f}us)")
                        if any_value:
                            lines.append(cells)
                if len(lines) <= 1:
                    continue
                print(f"\n## rows={kind} batch={batch} threads={threads} "
                      f"(ratio to the limit, time per row)")
                print_table(header, lines, args.markdown)

    # Scaling: time per row divided by V (ns per token). Constant down a column = linear
    # in V; constant across batches = linear in rows.
    scale_names = ["limit/maxexpsum", "pipeline/greedy", "pipeline/t",
                   "pipeline/t_topk50_topp95_minp05", "pipeline/t_topp95"]
    print("\n## scaling: ns per token (time per row / V), normal rows, one thread")
    header = ["config", "batch"] + [f"V={v}" for v in vocabs]
    lines = []
    for name in scale_names:
        for batch in batches:
            cells = [name, str(batch)]
            for v in vocabs:
                t = rows.get((name, "normal", v, batch, "f32", 1))
                cells.append("-" if t is None else f"{t * 1e9 / v:.3f}")
            lines.append(cells)
    print_table(header, lines, args.markdown)

    print("\n## issue 4 targets (V=128256, normal rows, batch 1, one thread)")
    for name, limit, what in TARGETS:
        r, t = ratio(name, "normal", 128256, 1, "f32", 1)
        if r is None:
            print(f"{what}: not measured")
            continue
        verdict = "MET" if r <= limit else f"MISSED by {r / limit:.2f}x"
        print(f"{what}: {r:.2f}x the limit (target <= {limit}x) {verdict}")
    for name in ("pipeline/t_topk50_topp95_minp05", "pipeline/greedy", "pipeline/t"):
        f32 = rows.get((name, "normal", 128256, 1, "f32", 1))
        bf16 = rows.get((name, "normal", 128256, 1, "bf16", 1))
        if f32 and bf16:
            r = bf16 / f32
            verdict = "MET" if r <= 1.1 else f"MISSED by {r / 1.1:.2f}x"
            print(f"bf16 input, {name}: {r:.2f}x the fp32 time (target <= 1.1x) {verdict}")
    dist = rows.get(("pipeline/distribution_sorted", "normal", 128256, 1, "f32", 1))
    dense = rows.get(("dense/normalised", "normal", 128256, 1, "f32", 1))
    sorter = rows.get(("sort/hwy_sorter", "normal", 128256, 1, "f32", 1))
    if dist and dense and sorter:
        extra = dist - dense
        verdict = "MET" if extra <= sorter else f"MISSED by {extra / sorter:.2f}x"
        print(f"GetDistribution's sort: {extra * 1e6:.0f}us beyond the dense distribution; "
              f"hwy::Sorter on V floats {sorter * 1e6:.0f}us (target: not slower) {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
