"""Where the time goes: torch.profiler tables of a paper-sized training step and of evaluation,
the evaluation rate against the image chunk size, and the first layer's memory layout under
autograd (the figures in BENCHMARKS.md).

    python benchmarks/profiles.py [--threads 1]
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from torch.profiler import ProfilerActivity, profile

from weightgen.evaluate import predict
from weightgen.models.hypernet import HyperNetwork
from weightgen.objective import ObjectiveConfig, objective
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

    first_layer_layouts()


def _milliseconds(work, repeats: int = 5) -> float:
    work()
    started = time.perf_counter()
    for _ in range(repeats):
        work()
    return 1e3 * (time.perf_counter() - started) / repeats


def first_layer_layouts(networks: int = 32, images: int = 32) -> None:
    """The paper's first layer (1 -> 32 channels, 5x5, 2x2 max-pool) of 32 networks on their own
    32 images, forward and backward to its weights, with the pre-pool map in either layout."""
    torch.manual_seed(0)
    x = torch.rand(networks, images, 1, 28, 28)
    mats = torch.randn(networks, 32, 26, requires_grad=True)
    grad = torch.randn(networks, images, 32, 14, 14)
    channels_last = torch.channels_last

    def layer(layout: str):
        def run() -> None:
            outs = []
            for k in range(networks):
                weight = mats[k, :, :-1].reshape(32, 1, 5, 5)
                if layout == "channels-last weights":
                    weight = weight.contiguous(memory_format=channels_last)
                y = F.conv2d(x[k], weight, mats[k, :, -1], padding=2)
                if layout == "NCHW map converted":
                    y = y.contiguous(memory_format=channels_last)
                outs.append(F.max_pool2d(y, 2))
            torch.stack(outs).backward(grad)

        return run

    y = F.conv2d(x[0], mats[0, :, :-1].detach().reshape(32, 1, 5, 5), padding=2)
    with torch.no_grad():
        pool = {
            name: _milliseconds(lambda m=m: F.max_pool2d(m, 2), 20)
            for name, m in (
                ("NCHW", y),
                ("channels-last", y.contiguous(memory_format=channels_last)),
            )
        }
    print(
        f"## first layer under autograd, {networks} networks x {images} images "
        f"({torch.get_num_threads()} threads)"
    )
    print(
        f"max-pool forward of one network's map: NCHW {pool['NCHW']:.2f} ms, "
        f"channels-last {pool['channels-last']:.2f} ms"
    )
    print("| layout | forward + backward, ms |")
    print("|---|---|")
    for layout in ("NCHW", "NCHW map converted", "channels-last weights"):
        print(f"| {layout} | {_milliseconds(layer(layout)):.1f} |")


if __name__ == "__main__":
    main()
