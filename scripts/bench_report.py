#!/usr/bin/env python3
"""Summarises scripts/bench.sh runs: end-to-end latency from the node
simulator, the signer's per-phase breakdown from its JSON log lines, the
floor measured in the same run, and the ratios to the floor.

    bench_report.py TRANSPORT RUN_DIR [RUN_DIR ...]

Each RUN_DIR holds bench.json (the simulator's --json summary), signer.log
(the signer's JSON logs) and floor.txt (examples/floor.rs output)."""

import json
import statistics
import sys
from pathlib import Path

PHASES = ("read", "decode", "guard", "write", "sign", "respond")


def percentile(values, p):
    ordered = sorted(values)
    if not ordered:
        return 0.0
    rank = max(1, -(-len(ordered) * p // 100)) - 1
    return float(ordered[int(rank)])


def floor_figures(path: Path) -> dict:
    figures = {}
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) < 3 or parts[0] != "floor":
            continue
        figures[parts[1]] = {k: float(v) for k, v in (p.split("=") for p in parts[2:])}
    return figures


def log_fields(line: str):
    """The fields of a "signed" log line: JSON (the signer's own lines) or
    text with key=value pairs (an enclave's lines, which it formats itself
    and its host relays as they are)."""
    try:
        entry = json.loads(line)
        fields = entry.get("fields", entry)
        return fields if fields.get("message") == "signed" else None
    except json.JSONDecodeError:
        pass
    if " signed " not in line:
        return None
    fields = {}
    for token in line.split():
        key, sep, value = token.partition("=")
        if sep and value.isdigit():
            fields[key] = int(value)
    return fields


def phase_samples(path: Path) -> dict:
    samples = {phase: [] for phase in PHASES}
    samples["latency"] = []
    for line in path.read_text().splitlines():
        fields = log_fields(line)
        if fields is None:
            continue
        for phase in PHASES:
            samples[phase].append(fields.get(f"{phase}_us", 0))
        samples["latency"].append(fields.get("latency_us", 0))
    return samples


def run_figures(transport: str, run: Path) -> dict:
    bench = json.loads(run.joinpath("bench.json").read_text())
    floor = floor_figures(run.joinpath("floor.txt"))
    phases = phase_samples(run.joinpath("signer.log"))
    whole = floor.get(f"floor_{transport}", {})
    out = {
        "p50": bench["p50_us"],
        "p90": bench["p90_us"],
        "p99": bench["p99_us"],
        "max": bench["max_us"],
        "rps": bench["throughput_rps"],
        "floor_p50": whole.get("p50_us", 0.0),
        "floor_p99": whole.get("p99_us", 0.0),
        "rt_p50": floor.get(f"roundtrip_{transport}", {}).get("p50_us", 0.0),
        "sign_p50": floor.get("sign", {}).get("p50_us", 0.0),
        "write_p50": floor.get("state_write", {}).get("p50_us", 0.0),
        "write_p99": floor.get("state_write", {}).get("p99_us", 0.0),
    }
    for name, values in phases.items():
        out[f"in_{name}_p50"] = percentile(values, 50)
        out[f"in_{name}_p99"] = percentile(values, 99)
    out["ratio_p50"] = out["p50"] / out["floor_p50"] if out["floor_p50"] else float("nan")
    out["ratio_p99"] = out["p99"] / out["floor_p99"] if out["floor_p99"] else float("nan")
    etcd = run.joinpath("etcd_floor.json")
    if etcd.exists():
        txn = json.loads(etcd.read_text())["etcd_txn"]
        out["txn_p50"], out["txn_p99"] = txn["p50_us"], txn["p99_us"]
    out["write_variants"] = {
        name[len("record_"):]: fig for name, fig in floor.items() if name.startswith("record_")
    }
    return out


def main() -> int:
    transport, runs = sys.argv[1], [Path(p) for p in sys.argv[2:]]
    figures = [run_figures(transport, run) for run in runs]
    for i, f in enumerate(figures, 1):
        print(
            f"run {i}: p50 {f['p50']} us, p99 {f['p99']} us, {f['rps']:.0f} req/s; "
            f"floor p50 {f['floor_p50']:.0f} us, p99 {f['floor_p99']:.0f} us; "
            f"ratio p50 {f['ratio_p50']:.2f}, p99 {f['ratio_p99']:.2f}"
        )
    med = lambda key: statistics.median(f[key] for f in figures)
    print(f"\nmedians of {len(figures)} runs ({transport}):")
    print(f"  end to end      p50 {med('p50'):.0f} us  p90 {med('p90'):.0f} us  "
          f"p99 {med('p99'):.0f} us  max {med('max'):.0f} us  {med('rps'):.0f} req/s")
    print(f"  floor           p50 {med('floor_p50'):.0f} us  p99 {med('floor_p99'):.0f} us  "
          f"(round trip {med('rt_p50'):.0f} + signature {med('sign_p50'):.0f} + "
          f"state write {med('write_p50'):.0f} us at p50; write p99 {med('write_p99'):.0f} us)")
    print(f"  ratio to floor  p50 {med('ratio_p50'):.2f}  p99 {med('ratio_p99'):.2f}")
    if all("txn_p50" in f for f in figures):
        print(f"  etcd            one compare-and-swap p50 {med('txn_p50'):.0f} us  "
              f"p99 {med('txn_p99'):.0f} us (same client, same run, after the signer)")
    print("  inside the signer (p50 / p99 per phase, us):")
    for name in PHASES + ("latency",):
        print(f"    {name:<8} {med(f'in_{name}_p50'):>7.0f} {med(f'in_{name}_p99'):>7.0f}")
    print("  durable record write variants (p50 / p99, us):")
    for name in figures[0]["write_variants"]:
        p50 = statistics.median(f["write_variants"][name]["p50_us"] for f in figures)
        p99 = statistics.median(f["write_variants"][name]["p99_us"] for f in figures)
        print(f"    {name:<34} {p50:>7.0f} {p99:>7.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
