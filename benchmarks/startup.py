"""Start-up time of the command: ``weightgen --help`` and ``--version`` against a bare Python
start and against ``import torch``, each in a fresh process, best of several runs.

The command imports PyTorch only in the subcommand that runs, so asking for help costs about
what starting Python costs.

    python benchmarks/startup.py [--runs 5] [--json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

PROCESSES = {  # name -> the command run in a fresh process
    "python -c pass (reference)": [sys.executable, "-c", "pass"],
    "weightgen --help": [sys.executable, "-m", "weightgen", "--help"],
    "weightgen --version": [sys.executable, "-m", "weightgen", "--version"],
    "python -c 'import torch'": [sys.executable, "-c", "import torch"],
}


def best_of(command: list[str], runs: int) -> float:
    """The shortest wall time of ``runs`` runs, in seconds."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    seconds = {name: best_of(command, args.runs) for name, command in PROCESSES.items()}
    reference = seconds["python -c pass (reference)"]
    if args.json:
        print(json.dumps({"seconds": seconds, "runs": args.runs}))
        return
    for name, value in seconds.items():
        print(f"{name:32s} {value:6.3f} s   {value / reference:5.1f}x the bare start")


if __name__ == "__main__":
    main()
