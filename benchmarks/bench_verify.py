"""Verifier throughput on the CPU backend: a tiny correct candidate, warm pool vs cold starts.

Prints one JSON object per mode (and a summary line):
- ``warm``: one Verifier (zygote already started, reference cached); each candidate is a fork.
- ``spawn``: parent warm, but every candidate gets a freshly spawned worker interpreter.
- ``cold``: a fresh Python process per candidate (``evokernel eval``-like: new interpreter,
  new Verifier, new worker, reference recomputed).

Usage: python benchmarks/bench_verify.py [--warm N] [--cold N] [--max-elements N]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROBLEM = ROOT / "tests" / "verify" / "problems" / "relu.py"
CANDIDATE = ROOT / "tests" / "verify" / "good" / "relu.py"

COLD_SCRIPT = """
import sys
from pathlib import Path
from evokernel.verify import Verifier, VerifySettings
s = VerifySettings(backend="cpu", max_elements=int(sys.argv[3]))
with Verifier(s, workers=1) as v:
    verdict = v.evaluate(Path(sys.argv[1]), Path(sys.argv[2]).read_text())
assert verdict.status == "correct", verdict.summary()
"""


def _record(mode: str, walls: list[float], extra: dict) -> dict:
    median = statistics.median(walls)
    return {
        "bench": "verify_cpu_tiny_candidate",
        "mode": mode,
        "candidates": len(walls),
        "median_wall_s": round(median, 4),
        "p20_wall_s": round(sorted(walls)[int(0.2 * (len(walls) - 1))], 4),
        "p80_wall_s": round(sorted(walls)[int(0.8 * (len(walls) - 1))], 4),
        "candidates_per_minute": round(60.0 / median, 2),
        **extra,
    }


def bench_pool(n: int, max_elements: int, start_method: str) -> tuple[list[float], float]:
    from evokernel.verify import Verifier, VerifySettings

    source = CANDIDATE.read_text()
    settings = VerifySettings(backend="cpu", max_elements=max_elements, start_method=start_method)
    t0 = time.perf_counter()
    with Verifier(settings, workers=1) as verifier:
        first = verifier.evaluate(PROBLEM, source)  # starts the pool, computes the reference
        assert first.status == "correct", first.summary()
        first_s = time.perf_counter() - t0
        walls = []
        for _ in range(n):
            t = time.perf_counter()
            verdict = verifier.evaluate(PROBLEM, source)
            walls.append(time.perf_counter() - t)
            assert verdict.status == "correct", verdict.summary()
    return walls, first_s


def bench_cold(n: int, max_elements: int) -> list[float]:
    walls = []
    for _ in range(n):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", COLD_SCRIPT, str(PROBLEM), str(CANDIDATE), str(max_elements)],
                       check=True, cwd=ROOT)
        walls.append(time.perf_counter() - t)
    return walls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warm", type=int, default=20, help="candidates through the warm pool")
    parser.add_argument("--spawn", type=int, default=3, help="candidates with a spawned worker each")
    parser.add_argument("--cold", type=int, default=3, help="candidates with a fresh process each")
    parser.add_argument("--max-elements", type=int, default=1024, help="fitted input size of the tiny problem")
    args = parser.parse_args()
    env = {"python": platform.python_version(), "cpus": os.cpu_count(),
           "load_avg_1m": round(os.getloadavg()[0], 2), "max_elements": args.max_elements}

    warm, first = bench_pool(args.warm, args.max_elements, "fork")
    warm_rec = _record("warm", warm, {**env, "first_candidate_s": round(first, 3)})
    print(json.dumps(warm_rec), flush=True)
    if args.spawn:
        spawn, _ = bench_pool(args.spawn, args.max_elements, "spawn")
        print(json.dumps(_record("spawn", spawn, env)), flush=True)
    if args.cold:
        cold = bench_cold(args.cold, args.max_elements)
        cold_rec = _record("cold", cold, env)
        print(json.dumps(cold_rec), flush=True)
        print(json.dumps({"bench": "verify_cpu_tiny_candidate", "mode": "summary",
                          "warm_speedup_over_cold": round(cold_rec["median_wall_s"] / warm_rec["median_wall_s"], 1),
                          "warm_target_met": warm_rec["median_wall_s"] <= 1.5}), flush=True)


if __name__ == "__main__":
    main()
