"""Run folders made by earlier versions keep sampling the same networks (the method refactor
must not change a bit): tests/data/legacy_runs/README.md says how they were made."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from weightgen.cli import main

LEGACY = Path(__file__).parent / "data" / "legacy_runs"
RECORDED_ON = "AVX2"  # the CPU capability the expected files were sampled on

CASES = {  # expected file -> arguments of `weightgen sample`
    "hypernetwork": ["hypernetwork", "-n", "5", "--seed", "7"],
    "hypernetwork_raw_batch": [
        "hypernetwork",
        "-n",
        "5",
        "--seed",
        "7",
        "--batch-norm",
        "batch",
        "--raw",
    ],
    "mnfg": ["mnfg", "-n", "5", "--seed", "7"],
    "direct": ["direct", "-n", "3"],
}


@pytest.fixture(scope="module")
def legacy(tmp_path_factory) -> Path:
    """A copy of the legacy run folders (training commands may write lock files)."""
    copy = tmp_path_factory.mktemp("legacy") / "runs"
    shutil.copytree(LEGACY, copy)
    return copy


@pytest.mark.parametrize("name", sorted(CASES))
def test_sampling_an_old_run_folder_gives_the_recorded_networks(legacy, tmp_path, name):
    run, *options = CASES[name]
    out = tmp_path / f"{name}.safetensors"
    assert main(["sample", str(legacy / run), *options, "-o", str(out), "--threads", "1"]) == 0
    got, want = load_file(out), load_file(LEGACY / "expected" / f"{name}.safetensors")
    assert got.keys() == want.keys()
    exact = torch.backends.cpu.get_cpu_capability() == RECORDED_ON
    for key in want:
        if exact:
            assert torch.equal(got[key], want[key]), key
        else:
            torch.testing.assert_close(got[key], want[key], rtol=1e-5, atol=1e-6)
