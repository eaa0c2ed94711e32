"""How the cost of training and evaluation grows with the work per step (BENCHMARKS.md).

Training: steps/s of the paper's full step (hypernetwork, gauge, entropy, Adam) for several
numbers of noise samples and images per network. Evaluation: network-images/s of
``evaluate.predict`` (float32 and bfloat16) for several numbers of networks on shared images.
Reference loops are measured once, at the paper's configuration, in the same process.

    python benchmarks/scaling.py [--device cpu] [--json results.json]
"""

from __future__ import annotations

import argparse
import json
import platform

import torch

from weightgen.bench import evaluation_rates, training_rates
from weightgen.distributed import resolve_device
from weightgen.targets import mnist_cnn


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--steps", type=int, default=3, help="timed training steps per point")
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args()
    device = resolve_device(args.device)
    spec = mnist_cnn()
    torch.manual_seed(0)
    rows = []
    for noise, images in [(32, 32), (8, 32), (16, 32), (64, 32), (32, 8), (32, 16), (32, 64)]:
        fast, ref = training_rates(
            spec, device, noise, images, args.steps, reference=(noise, images) == (32, 32)
        )
        rows.append(
            {
                "kind": "train",
                "noise_samples": noise,
                "images_per_network": images,
                "steps_per_s": fast,
                "network_images_per_s": fast * noise * images,
                "reference_steps_per_s": ref,
            }
        )
    for networks in (4, 16, 64, 200):
        f32, bf16, ref = evaluation_rates(spec, device, networks, 2000, reference=networks == 16)
        rows.append(
            {
                "kind": "eval",
                "networks": networks,
                "images": 2000,
                "net_images_per_s": f32,
                "net_images_per_s_bfloat16": bf16,
                "reference_net_images_per_s": ref,
            }
        )
    machine = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"cpu {platform.machine()}, {torch.get_num_threads()} threads"
    )
    print(f"# {machine}, torch {torch.__version__}")
    print("| training: noise samples × images | steps/s | network-images/s | reference steps/s |")
    print("|---|---|---|---|")
    for r in (r for r in rows if r["kind"] == "train"):
        ref = f"{r['reference_steps_per_s']:.2f}" if r["reference_steps_per_s"] else ""
        print(
            f"| {r['noise_samples']} × {r['images_per_network']} | {r['steps_per_s']:.2f} | "
            f"{r['network_images_per_s']:.0f} | {ref} |"
        )
    print()
    print(
        "| evaluation: networks × 2,000 images | float32 net-images/s | bfloat16 net-images/s "
        "| module loop net-images/s |"
    )
    print("|---|---|---|---|")
    for r in (r for r in rows if r["kind"] == "eval"):
        ref = f"{r['reference_net_images_per_s']:.0f}" if r["reference_net_images_per_s"] else ""
        print(
            f"| {r['networks']} | {r['net_images_per_s']:.0f} | "
            f"{r['net_images_per_s_bfloat16']:.0f} | {ref} |"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": machine, "torch": torch.__version__, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
