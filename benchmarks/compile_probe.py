"""Does ``torch.compile`` (inductor) make the training step leaner? (issue 27, "a leaner step")

Times the paper-sized training step (32 noise samples x 32 images, the paper's hypernetwork and
target, objective of eq. 11 with the exact gauge) eagerly and with the loss computation
compiled, in the same process and interleaved (rounds of eager, then compiled), and checks that
the compiled loss and gradients equal the eager ones to float32 tolerance. Prints one JSON line:
steps/s of each, their ratio, the compile time and the largest gradient difference.

    python benchmarks/compile_probe.py --threads 2 --steps 20 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from weightgen.models.hypernet import HyperNetwork
from weightgen.objective import ObjectiveConfig, objective
from weightgen.targets import mnist_cnn


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=20, help="timed steps per round and mode")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--canonical", action="store_true", help="canonical-permutation entropy")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    spec = mnist_cnn()
    hypernet = HyperNetwork(spec).train()
    cfg = ObjectiveConfig(canonical_permutation=args.canonical)
    z = hypernet.sample_noise(32)
    images = torch.rand(32, 32, *spec.input_shape)
    labels = torch.randint(0, spec.num_classes, (32, 32))

    def loss() -> torch.Tensor:
        return objective(hypernet, z, images, labels, cfg).loss

    compiled = torch.compile(loss)

    def gradients(fn) -> tuple[float, list[torch.Tensor]]:
        hypernet.zero_grad(set_to_none=True)
        value = fn()
        value.backward()
        return value.item(), [p.grad.clone() for p in hypernet.parameters()]

    started = time.perf_counter()
    compiled_value, compiled_grads = gradients(compiled)  # the first call compiles
    compile_seconds = time.perf_counter() - started
    eager_value, eager_grads = gradients(loss)
    largest = max(
        ((a - b).abs().max() / b.abs().max().clamp_min(1e-12)).item()
        for a, b in zip(compiled_grads, eager_grads)
    )

    def rate(fn) -> float:
        started = time.perf_counter()
        for _ in range(args.steps):
            hypernet.zero_grad(set_to_none=True)
            fn().backward()
        return args.steps / (time.perf_counter() - started)

    eager, fast = [], []
    for _ in range(args.rounds):
        eager.append(rate(loss))
        fast.append(rate(compiled))
    result = {
        "eager_steps_per_s": max(eager),
        "compiled_steps_per_s": max(fast),
        "compiled_speedup": max(fast) / max(eager),
        "compile_seconds": compile_seconds,
        "loss_relative_difference": abs(compiled_value - eager_value) / abs(eager_value),
        "largest_gradient_relative_difference": largest,
        "threads": args.threads,
        "canonical": args.canonical,
        "torch": torch.__version__,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
