"""Two CPU processes (gloo) against one: the sharded step equals the single-process step."""

import subprocess
import sys

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from safetensors.torch import load_file

from tests.helpers import write_tiny_yaml
from weightgen.distributed import Context, gather_shards, split, teardown
from weightgen.models.hypernet import HyperNetwork
from weightgen.objective import ObjectiveConfig, objective
from weightgen.runfolder import list_checkpoints, load_checkpoint
from weightgen.targets import mnist_cnn

K, B = 8, 4


def global_batch():
    g = torch.Generator().manual_seed(7)
    z = torch.rand(K, 300, generator=g) * 2 - 1
    images = torch.rand(K, B, 1, 28, 28, generator=g)
    labels = torch.randint(0, 10, (K, B), generator=g)
    return z, images, labels


def fresh_hypernet():
    torch.manual_seed(11)
    return HyperNetwork(mnist_cnn()).train()


def one_step(hypernet, z, images, labels, canonical=False):
    cfg = ObjectiveConfig(lam=1000.0, canonical_permutation=canonical)
    terms = objective(hypernet, z, images, labels, cfg)
    terms.loss.backward()
    module = getattr(hypernet, "module", hypernet)
    grads = {name: p.grad.clone() for name, p in module.named_parameters()}
    buffers = {name: b.clone() for name, b in module.named_buffers()}
    return terms, grads, buffers


def _worker(rank, world, init_file, out_file, canonical):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    z, images, labels = global_batch()
    mine = Context(rank, world).shard(K)
    model = torch.nn.parallel.DistributedDataParallel(fresh_hypernet(), broadcast_buffers=False)
    terms, grads, buffers = one_step(model, z[mine], images[mine], labels[mine], canonical)
    if rank == 0:
        torch.save(
            {
                "value": terms.value,
                "entropy": terms.entropy,
                "cross_entropy": terms.cross_entropy,
                "grads": grads,
                "buffers": buffers,
            },
            out_file,
        )
    teardown()  # barrier first: rank 1 must not close gloo while rank 0 is still saving


@pytest.mark.slow
@pytest.mark.parametrize("canonical", [False, True], ids=["entropy", "canonical_entropy"])
def test_sharded_loss_and_gradients_equal_single_process(tmp_path, canonical):
    out = tmp_path / "rank0.pt"
    mp.spawn(_worker, args=(2, str(tmp_path / "init"), str(out), canonical), nprocs=2, join=True)
    got = torch.load(out, weights_only=True)
    terms, grads, buffers = one_step(fresh_hypernet(), *global_batch(), canonical)
    torch.testing.assert_close(got["value"], terms.value, rtol=1e-5, atol=1e-3)
    torch.testing.assert_close(got["entropy"], terms.entropy, rtol=1e-5, atol=1e-3)
    torch.testing.assert_close(got["cross_entropy"], terms.cross_entropy)
    for name, grad in grads.items():
        torch.testing.assert_close(
            got["grads"][name],
            grad,
            rtol=1e-3,
            atol=1e-3 * grad.abs().max().item() + 1e-6,
            msg=name,
        )
    for name, buf in buffers.items():  # pooled batch-norm statistics
        torch.testing.assert_close(
            got["buffers"][name].float(), buf.float(), rtol=1e-4, atol=1e-5, msg=name
        )


def test_split_and_gather_cover_uneven_counts():
    for world in (1, 2, 3):
        parts = [split(7, Context(r, world)) for r in range(world)]
        assert [i for p in parts for i in range(7)[p]] == list(range(7))
    assert torch.equal(gather_shards(torch.arange(5), 5, Context()), torch.arange(5))


def _torchrun(*args):
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "weightgen",
        *args,
    ]


@pytest.fixture
def tiny_yaml(tmp_path):
    return write_tiny_yaml(tmp_path / "tiny.yaml", steps=4, checkpoint_every=2, validate_every=2)


@pytest.mark.slow
def test_torchrun_training_and_sampling_match_one_process(tiny_yaml, tmp_path, mnist_dir):
    env_args = ["--data-dir", str(mnist_dir), "--device", "cpu"]
    single, multi = tmp_path / "single", tmp_path / "multi"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "weightgen",
            "train",
            "--config",
            str(tiny_yaml),
            "--out",
            str(single),
            "--no-progress",
            *env_args,
        ],
        check=True,
        capture_output=True,
    )
    for steps in ("2", "4"):  # the second call resumes the first, as in one process
        result = subprocess.run(
            _torchrun(
                "train",
                "--config",
                str(tiny_yaml),
                "--out",
                str(multi),
                "--steps",
                steps,
                "--no-progress",
                *env_args,
            ),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stderr[-2000:]
        assert list_checkpoints(multi)[-1].name == f"step-000000{steps}.pt"
    # rank 0 alone wrote the folder: each (kind, step) record once
    import json

    records = [json.loads(line) for line in (multi / "metrics.jsonl").read_text().splitlines()]
    keys = [(r["kind"], r["step"]) for r in records]
    assert len(keys) == len(set(keys))
    assert [k for k in keys if k[0] == "validation"] == [("validation", 2), ("validation", 4)]
    a = load_checkpoint(list_checkpoints(single)[-1])["model"]
    b = load_checkpoint(list_checkpoints(multi)[-1])["model"]
    for name in a:
        torch.testing.assert_close(b[name].float(), a[name].float(), rtol=1e-3, atol=1e-4, msg=name)

    one, two = tmp_path / "one.safetensors", tmp_path / "two.safetensors"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "weightgen",
            "sample",
            str(single),
            "-n",
            "5",
            "-o",
            str(one),
            "--device",
            "cpu",
        ],
        check=True,
        capture_output=True,
    )
    result = subprocess.run(
        _torchrun("sample", str(single), "-n", "5", "-o", str(two), "--device", "cpu"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    x, y = load_file(str(one)), load_file(str(two))
    assert x.keys() == y.keys()
    for name in x:
        torch.testing.assert_close(y[name], x[name], rtol=1e-5, atol=1e-5, msg=name)

    result = subprocess.run(
        _torchrun(
            "evaluate",
            str(two),
            "--split",
            "validation",
            "--json",
            str(tmp_path / "m.json"),
            *env_args,
        ),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.count("networks from") == 1  # rank 0 reports once
