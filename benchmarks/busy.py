"""Training on a busy machine: steps/s of the paper-sized training step alone and next to a
competing busy process on one core, and the slowdown factor, for several thread settings.

Each measurement runs in a fresh process (thread pools and OpenMP's wait policy are fixed when
a process starts); the competitor is a Python busy loop (nice 0 by default, as another user's
job; ``--nice 19`` for a background job of one's own).

    python benchmarks/busy.py                 # the table for BENCHMARKS.md
    python benchmarks/busy.py --steps 10 --nice 19 --json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

# name -> (environment, --threads value)
SETTINGS = {
    "--threads auto (default)": ({}, "auto"),
    "--threads all (PyTorch's default)": ({}, "all"),
    "--threads all, OpenMP passive wait": ({"OMP_WAIT_POLICY": "PASSIVE"}, "all"),
    "--threads 1": ({}, "1"),
}
# the competitor: a plain Python busy loop at the given nice level (0: another user's job)
BUSY_LOOP = "import os, sys\nos.nice(int(sys.argv[1]))\nwhile True:\n    pass\n"


def child(threads: str | None, steps: int) -> None:
    """Print the training step rate of this process (weightgen's thread setting applied)."""
    import torch

    from weightgen.bench import training_rates
    from weightgen.targets import mnist_cnn
    from weightgen.threads import apply_threads

    apply_threads(threads)
    torch.manual_seed(0)
    rate, _ = training_rates(mnist_cnn(), torch.device("cpu"), 32, 32, steps, reference=False)
    print(json.dumps({"steps_per_s": rate, "threads": torch.get_num_threads()}))


def measure(env: dict, threads: str | None, steps: int, busy: bool, nice: int) -> dict:
    command = [sys.executable, __file__, "--child", "--steps", str(steps)]
    if threads is not None:
        command += ["--threads", threads]
    competitor = subprocess.Popen([sys.executable, "-c", BUSY_LOOP, str(nice)]) if busy else None
    try:
        if busy:
            time.sleep(2)  # the load average and the scheduler see it first
        out = subprocess.run(
            command, capture_output=True, text=True, check=True, env={**os.environ, **env}
        ).stdout
    finally:
        if competitor is not None:
            competitor.kill()
            competitor.wait()
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8, help="timed steps per measurement")
    parser.add_argument("--nice", type=int, default=0, help="the competitor's nice level")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--threads", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.threads, args.steps)
        return
    rows = {}
    for name, (env, threads) in SETTINGS.items():
        alone = measure(env, threads, args.steps, busy=False, nice=args.nice)
        loaded = measure(env, threads, args.steps, busy=True, nice=args.nice)
        rows[name] = {
            "alone_steps_per_s": alone["steps_per_s"],
            "busy_steps_per_s": loaded["steps_per_s"],
            "threads_alone": alone["threads"],
            "threads_busy": loaded["threads"],
            "slowdown": alone["steps_per_s"] / loaded["steps_per_s"],
        }
    if args.json:
        print(json.dumps({"cores": os.cpu_count(), "competitor_nice": args.nice, "rows": rows}))
        return
    print(f"{'setting':30s} {'alone':>8s} {'busy':>8s} {'slowdown':>9s}  threads")
    for name, row in rows.items():
        print(
            f"{name:30s} {row['alone_steps_per_s']:8.2f} {row['busy_steps_per_s']:8.2f} "
            f"{row['slowdown']:8.1f}x  {row['threads_alone']} / {row['threads_busy']}"
        )


if __name__ == "__main__":
    main()
