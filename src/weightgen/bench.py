"""``weightgen bench``: training and evaluation throughput against plain reference loops
measured in the same process (machines are noisy; ratios travel, absolute numbers do not).

* training: one full step of the paper's objective (hypernetwork, gauge, entropy, Adam) with
  the batched target forward, against the same step whose target forward is a loop over
  networks through torch.nn modules (``targets.reference_forward``);
* evaluation: many generated networks on shared images with ``evaluate.predict`` (float32, and
  bfloat16 arithmetic as a second figure), against a loop that loads each network into a
  torch.nn.Sequential and runs it;
* the roofline: the training step's achieved GFLOP/s (its FLOPs counted from the spec) as a
  fraction of a large float32 matrix product's rate in the same process, and the step's rate
  in mixed bfloat16 precision against float32.
"""

from __future__ import annotations

import platform
import resource
import sys
import time
from collections.abc import Callable

import torch

from .cost import training_step_flops
from .evaluate import predict
from .models.hypernet import HyperNetwork
from .objective import ObjectiveConfig, objective
from .symmetry import gauge_fix
from .targets import ConvImpl, TargetSpec, mnist_cnn


def _rate(work: Callable[[], object], units: float, repeats: int) -> float:
    """Units per second of ``work``, after one warm-up call."""
    work()
    _sync()
    started = time.perf_counter()
    for _ in range(repeats):
        work()
    _sync()
    return units * repeats / (time.perf_counter() - started)


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def matmul_peak_gflops(device: torch.device, size: int = 2048, repeats: int = 6) -> float:
    """Float32 GFLOP/s of a large matrix product in this process: the machine's practical
    peak, against which the training step's rate is read."""
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    return _rate(lambda: torch.mm(a, b), 2 * size**3 / 1e9, repeats)


def training_rates(
    spec: TargetSpec,
    device: torch.device,
    noise_samples: int,
    images_per_network: int,
    steps: int,
    reference: bool = True,
    precision: str = "float32",
) -> tuple[float, float | None]:
    """Steps per second of the batched and (if ``reference``) of the reference training step;
    ``precision`` "bfloat16" runs the target networks under autocast (mixed precision)."""
    hypernet = HyperNetwork(spec).to(device).train()
    optimizer = torch.optim.Adam(hypernet.parameters(), lr=1e-4)
    z = hypernet.sample_noise(noise_samples)
    images = torch.rand(noise_samples, images_per_network, *spec.input_shape, device=device)
    labels = torch.randint(0, spec.num_classes, (noise_samples, images_per_network), device=device)
    cfg = ObjectiveConfig()

    def step(conv_impl: ConvImpl | None) -> Callable[[], None]:
        def run() -> None:
            terms = objective(hypernet, z, images, labels, cfg, conv_impl, precision=precision)
            optimizer.zero_grad(set_to_none=True)
            terms.loss.backward()
            optimizer.step()

        return run

    fast = _rate(step(None), 1, steps)
    return fast, _rate(step("reference"), 1, max(1, steps // 2)) if reference else None


@torch.no_grad()
def evaluation_rates(
    spec: TargetSpec, device: torch.device, networks: int, images: int, reference: bool = True
) -> tuple[float, float, float | None]:
    """Network-images per second of ``predict`` (float32, then bfloat16) and (if
    ``reference``) of a loop of torch.nn modules."""
    hypernet = HyperNetwork(spec).to(device).eval()
    filters = gauge_fix(spec, hypernet(hypernet.sample_noise(networks)))
    x = torch.rand(images, *spec.input_shape, device=device)
    state = spec.to_state_dict(filters)
    modules = []
    for i in range(networks):
        module = spec.build_module().to(device).eval()
        module.load_state_dict({name: t[i] for name, t in state.items()})
        modules.append(module)

    def fast(precision: str) -> Callable[[], object]:
        return lambda: predict(spec, filters, x, precision=precision)

    def loop() -> None:
        for module in modules:
            module(x)

    return (
        _rate(fast("float32"), networks * images, 2),
        _rate(fast("bfloat16"), networks * images, 2),
        _rate(loop, networks * images, 1) if reference else None,
    )


def _peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    kilobytes = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kilobytes / (2**20 if sys.platform == "darwin" else 2**10)


def run_bench(
    device: torch.device,
    steps: int = 5,
    noise_samples: int = 32,
    images_per_network: int = 32,
    networks: int = 16,
    images: int = 2000,
) -> dict:
    spec = mnist_cnn()
    torch.manual_seed(0)
    train_fast, train_ref = training_rates(spec, device, noise_samples, images_per_network, steps)
    train_bf16, _ = training_rates(
        spec,
        device,
        noise_samples,
        images_per_network,
        steps,
        reference=False,
        precision="bfloat16",
    )
    step_gflop = training_step_flops(spec, noise_samples, images_per_network) / 1e9
    peak = matmul_peak_gflops(device)
    eval_fast, eval_bf16, eval_ref = evaluation_rates(spec, device, networks, images)
    return {
        "train_steps_per_s": train_fast,
        "train_steps_per_s_reference": train_ref,
        "train_speedup": train_fast / train_ref,
        "train_steps_per_s_bfloat16": train_bf16,
        "train_bfloat16_speedup": train_bf16 / train_fast,
        "train_step_gflop": step_gflop,
        "train_gflops": train_fast * step_gflop,
        "matmul_peak_gflops": peak,
        "train_fraction_of_peak": train_fast * step_gflop / peak,
        "eval_net_images_per_s": eval_fast,
        "eval_net_images_per_s_reference": eval_ref,
        "eval_speedup": eval_fast / eval_ref,
        "eval_net_images_per_s_bfloat16": eval_bf16,
        "peak_memory_mb": _peak_memory_mb(device),
        "device": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)",
        "torch": torch.__version__,
        "config": {
            "noise_samples": noise_samples,
            "images_per_network": images_per_network,
            "steps": steps,
            "networks": networks,
            "images": images,
        },
    }
