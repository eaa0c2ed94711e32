"""The function-space term's inputs: training images as they are, or with their patches
shuffled (``objective.function_inputs``)."""

import numpy as np
import pytest
import torch

from tests.helpers import read_log, tiny_config_dict, trained_hypernet, write_npz
from weightgen.config import config_from_dict
from weightgen.errors import WeightgenError
from weightgen.loop import train
from weightgen.objective import ObjectiveConfig
from weightgen.terms.function import function_inputs, shuffle_patches


def patches(images: torch.Tensor) -> list[list[bytes]]:
    """Each image's 7 x 7 patches as sorted byte strings."""
    m = images.shape[0]
    # (M, 1, 28, 28) -> (M, 16, 49)
    cut = images.reshape(m, 4, 7, 4, 7).permute(0, 1, 3, 2, 4).reshape(m, 16, 49)
    return [sorted(row.numpy().tobytes() for row in image) for image in cut]


def test_shuffled_patches_keep_every_patch_whole_and_move_them():
    images = torch.rand(5, 1, 28, 28)
    shuffled = shuffle_patches(images, torch.Generator().manual_seed(0))
    assert shuffled.shape == images.shape
    assert patches(shuffled) == patches(images)  # the same patches, each intact
    moved = (shuffled != images).flatten(1).any(1)
    assert moved.all()  # 16! orders: every image is rearranged
    again = shuffle_patches(images, torch.Generator().manual_seed(0))
    assert torch.equal(shuffled, again)
    other = shuffle_patches(images, torch.Generator().manual_seed(1))
    assert not torch.equal(shuffled, other)


def test_shuffled_patches_are_per_image_and_keep_channels_together():
    image = torch.rand(1, 3, 8, 8)
    shuffled = shuffle_patches(image.repeat(64, 1, 1, 1), torch.Generator().manual_seed(0))
    assert len({s.numpy().tobytes() for s in shuffled}) > 1  # each image its own order
    # (64, 3, 8, 8) -> (64, 16 patches, 3 channels, 2, 2): a patch's channels move together
    cut = shuffled.reshape(64, 3, 4, 2, 4, 2).permute(0, 2, 4, 1, 3, 5).reshape(64, 16, 3, 4)
    source = image.reshape(3, 4, 2, 4, 2).permute(1, 3, 0, 2, 4).reshape(16, 3, 4)
    for patch in cut.reshape(-1, 3, 4):
        assert (patch == source).flatten(1).all(1).any()


def test_training_inputs_pass_through_and_bad_sides_are_an_error():
    images = torch.rand(2, 1, 28, 28)
    generator = torch.Generator().manual_seed(0)
    assert function_inputs(ObjectiveConfig(), images, generator) is images
    with pytest.raises(ValueError, match="divisible by 4"):
        shuffle_patches(torch.rand(2, 1, 30, 30), generator)


def test_a_config_with_image_sides_the_grid_does_not_divide_is_a_one_line_error(tmp_path):
    path = write_npz(tmp_path / "six.npz")
    data = tiny_config_dict()
    data["data"] = {"name": "npz", "path": str(path)}
    data["target"] = {
        "layers": [
            {"name": "fc", "kind": "linear", "in_size": 36, "out_size": 3, "activation": "none"}
        ]
    }
    data["hypernet"]["generator_hidden"] = [[16]]
    data["objective"] = {"function_weight": 1.0, "function_images": 4}
    config_from_dict(data)  # training images: any sides
    data["objective"]["function_inputs"] = "shuffled_patches"
    with pytest.raises(WeightgenError, match="objective.function_inputs.*divisible by 4, not 6x6"):
        config_from_dict(data)


def test_training_on_shuffled_patches_logs_the_term_and_trains_other_weights(mnist, tmp_path):
    data = tiny_config_dict(steps=8, validate_every=4, checkpoint_every=100)
    data["objective"] = {"lambda": 100.0, "function_weight": 1.0, "function_images": 4}
    train(config_from_dict(data), tmp_path / "train", device="cpu", progress=False, data=mnist)
    data["objective"]["function_inputs"] = "shuffled_patches"
    train(config_from_dict(data), tmp_path / "shuffled", device="cpu", progress=False, data=mnist)
    log = read_log(tmp_path / "shuffled")
    assert all(np.isfinite(r["function_entropy"]) for r in log if r["kind"] == "train")
    assert [r["step"] for r in log if r["kind"] == "validation"] == [4, 8]
    assert all(np.isfinite(r["function_entropy"]) for r in log if r["kind"] == "validation")
    # the same seed and batches: only the term's inputs differ, and the weights with them
    plain = trained_hypernet(tmp_path / "train").extractor.linears[0].weight
    shuffled = trained_hypernet(tmp_path / "shuffled").extractor.linears[0].weight
    assert not torch.equal(plain, shuffled)
