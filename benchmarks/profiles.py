"""Where the time goes: torch.profiler tables of a paper-sized training step and of evaluation,
and the evaluation rate against the image chunk size (the figures in BENCHMARKS.md).

    python benchmarks/profiles.py [--threads 1]
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.profiler import ProfilerActivity, profile

from weightgen.config import ObjectiveConfig
from weightgen.evaluate import predict
from weightgen.hypernet import HyperNetwork
from weightgen.objective import objective
from weightgen.symmetry import gauge_fix
from weightgen.targets import mnist_cnn


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    spec = mnist_cnn()
    hypernet = HyperNetwork(spec).train()
    optimizer = torch.optim.Adam(hypernet.parameters(), lr=1e-4)
    z = hypernet.sample_noise(32)
    images, labels = torch.rand(32, 32, 1, 28, 28), torch.randint(0, 10, (32, 32))

    def step() -> None:
        terms = objective(hypernet, z, images, labels, ObjectiveConfig())
        optimizer.zero_grad(set_to_none=True)
        terms.loss.backward()
        optimizer.step()

    step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(3):
            step()
    print("## training step (paper configuration), 3 steps")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))

    hypernet.eval()
    with torch.no_grad():
        filters = gauge_fix(spec, hypernet(hypernet.sample_noise(64)))
    shared = torch.rand(2000, 1, 28, 28)
    for precision in ("float32", "bfloat16"):
        predict(spec, [f[:16] for f in filters], shared[:1024], precision=precision)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            predict(spec, [f[:16] for f in filters], shared[:1024], precision=precision)
        print(f"## evaluation, 16 networks x 1,024 shared images, {precision}")
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=10))

    print("## evaluation rate (network-images/s), 64 networks x 2,000 images, by image chunk")
    print("| image chunk | float32 | bfloat16 |")
    print("|---|---|---|")
    for chunk in (64, 128, 256, 1024):
        rates = []
        for precision in ("float32", "bfloat16"):
            predict(spec, filters, shared, image_chunk=chunk, precision=precision)
            started = time.perf_counter()
            predict(spec, filters, shared, image_chunk=chunk, precision=precision)
            rates.append(64 * 2000 / (time.perf_counter() - started))
        print(f"| {chunk} | {rates[0]:.0f} | {rates[1]:.0f} |")


if __name__ == "__main__":
    main()
