import gzip
import shutil

import pytest
import torch

from tests.helpers import digits_target, write_npz
from weightgen.data import load_mnist, load_test_split, training_batch_indices
from weightgen.errors import WeightgenError
from weightgen.idxfiles import locate


def test_real_mnist_split_and_facts(mnist):
    assert len(mnist.train) == 55000 and len(mnist.validation) == 5000 and len(mnist.test) == 10000
    assert mnist.train.images.shape == (55000, 1, 28, 28)
    assert mnist.train.images.dtype == torch.float32
    assert mnist.test.images.min() == 0.0 and mnist.test.images.max() == 1.0
    # the validation split is the first 5,000 of the training file
    assert mnist.validation.labels[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    counts = torch.bincount(torch.cat([mnist.validation.labels, mnist.train.labels]), minlength=10)
    assert counts.tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


def test_fashion_mnist_test_set(mnist_dir):
    fashion = load_test_split("fashion_mnist", mnist_dir, download=False)
    assert fashion.images.shape == (10000, 1, 28, 28)
    assert torch.bincount(fashion.labels).tolist() == [1000] * 10


def test_ood_set_follows_the_split(mnist_dir):
    from weightgen.data import load_dataset, load_ood_split

    fashion = load_dataset("fashion_mnist", mnist_dir, download=False)
    test = load_ood_split("fashion_mnist", (1, 28, 28), mnist_dir, download=False)
    validation = load_ood_split(
        "fashion_mnist", (1, 28, 28), mnist_dir, download=False, split_name="validation"
    )
    assert torch.equal(test.images, fashion.test.images)
    # choices on the validation split see the OOD set's first 5,000 training images, no test image
    assert torch.equal(validation.images, fashion.validation.images) and len(validation) == 5000
    with pytest.raises(WeightgenError, match="the networks read"):
        load_ood_split("fashion_mnist", (1, 8, 8), mnist_dir, download=False)


def test_environment_variable_is_searched(mnist_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("WEIGHTGEN_DATA", str(mnist_dir))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert locate("mnist", "t10k-labels-idx1-ubyte.gz", None, download=False).is_file()


def test_missing_file_names_the_file(tmp_path, monkeypatch):
    monkeypatch.delenv("WEIGHTGEN_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with pytest.raises(WeightgenError, match="train-images-idx3-ubyte.gz not found"):
        load_mnist(tmp_path, download=False)


def _copy_mnist(mnist_dir, target):
    source = mnist_dir / "mnist" if (mnist_dir / "mnist").is_dir() else mnist_dir
    for f in source.glob("*.gz"):
        shutil.copy(f, target / f.name)


def test_corrupt_file_is_refused_with_its_name(mnist_dir, tmp_path, monkeypatch):
    monkeypatch.delenv("WEIGHTGEN_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    _copy_mnist(mnist_dir, tmp_path)
    labels = tmp_path / "t10k-labels-idx1-ubyte.gz"
    raw = bytearray(gzip.decompress(labels.read_bytes()))
    raw[100] = (raw[100] + 1) % 10  # one wrong label, still a valid gzip
    labels.write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(WeightgenError, match="t10k-labels-idx1-ubyte.gz: checksum mismatch"):
        load_mnist(tmp_path, download=False)
    labels.write_bytes(b"not gzip at all")
    with pytest.raises(WeightgenError, match="t10k-labels-idx1-ubyte.gz: not a readable gzip"):
        load_mnist(tmp_path, download=False)


def test_recompressed_copy_is_accepted(mnist_dir, tmp_path, monkeypatch):
    monkeypatch.delenv("WEIGHTGEN_DATA", raising=False)
    _copy_mnist(mnist_dir, tmp_path)
    labels = tmp_path / "t10k-labels-idx1-ubyte.gz"
    labels.write_bytes(gzip.compress(gzip.decompress(labels.read_bytes()), compresslevel=1))
    assert len(load_mnist(tmp_path, download=False).test) == 10000


def test_batches_are_own_images_per_network_and_cover_each_epoch():
    size, k, b = 1000, 8, 16  # 128 per step
    steps = [training_batch_indices(t, k, b, size, seed=5) for t in range(16)]
    assert steps[0].shape == (k, b)
    stream = torch.cat([s.flatten() for s in steps])  # 2048 = 2 epochs + 48
    assert sorted(stream[:size].tolist()) == list(range(size))
    assert sorted(stream[size : 2 * size].tolist()) == list(range(size))
    assert not torch.equal(stream[:size], stream[size : 2 * size])  # reshuffled each epoch
    # a function of (seed, step) only: resuming reproduces the batch
    assert torch.equal(training_batch_indices(7, k, b, size, 5), steps[7])
    assert not torch.equal(training_batch_indices(7, k, b, size, 6), steps[7])


@pytest.fixture
def mirror(mnist_dir, tmp_path):
    """A local HTTP server on the loopback address serving a copy of the MNIST files."""
    import functools
    import http.server
    import threading

    served = tmp_path / "served"
    served.mkdir()
    _copy_mnist(mnist_dir, served)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


def test_missing_files_are_downloaded_verified_into_the_cache(mirror, tmp_path, monkeypatch):
    from weightgen import idxfiles

    served, url = mirror
    monkeypatch.delenv("WEIGHTGEN_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setitem(idxfiles.MIRRORS, "mnist", ["http://127.0.0.1:9/nothing/", url])
    mnist = load_mnist(tmp_path / "empty")
    assert len(mnist.test) == 10000
    cached = tmp_path / "cache" / "weightgen" / "mnist"
    assert sorted(p.name for p in cached.iterdir()) == sorted(p.name for p in served.iterdir())


def test_a_mirror_serving_wrong_bytes_is_refused(mirror, tmp_path, monkeypatch):
    from weightgen import idxfiles

    served, url = mirror
    (served / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(b"\x00" * 10008))
    monkeypatch.delenv("WEIGHTGEN_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setitem(idxfiles.MIRRORS, "mnist", [url])
    with pytest.raises(
        WeightgenError,
        match="t10k-labels-idx1-ubyte.gz not found locally and could not be downloaded",
    ):
        load_mnist(tmp_path / "empty")
    assert not (tmp_path / "cache" / "weightgen" / "mnist" / "t10k-labels-idx1-ubyte.gz").exists()


def test_digits_is_a_second_real_dataset_with_fixed_splits():
    from weightgen.data import load_dataset

    digits = load_dataset("digits")
    assert (len(digits.train), len(digits.validation), len(digits.test)) == (1200, 200, 397)
    assert digits.input_shape == (1, 8, 8) and digits.num_classes == 10
    assert digits.train.images.shape == (1200, 1, 8, 8)
    assert digits.test.images.min() == 0.0 and digits.test.images.max() == 1.0
    assert torch.equal(load_dataset("digits").test.labels, digits.test.labels)  # fixed shuffle
    assert set(torch.bincount(digits.train.labels).tolist()) <= set(range(100, 140))


def test_fashion_mnist_full_split_and_facts(mnist_dir):
    """Debian's re-compressed files are accepted by the SHA-256 of their contents."""
    from weightgen.data import load_dataset

    fashion = load_dataset("fashion_mnist", mnist_dir, download=False)
    assert (len(fashion.train), len(fashion.validation), len(fashion.test)) == (55000, 5000, 10000)
    assert fashion.input_shape == (1, 28, 28) and fashion.num_classes == 10
    assert fashion.validation.labels[:10].tolist() == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]
    counts = torch.bincount(torch.cat([fashion.validation.labels, fashion.train.labels]))
    assert counts.tolist() == [6000] * 10


def test_fashion_mnist_names_missing_training_files_and_keeps_upstream_md5(
    mnist_dir, tmp_path, monkeypatch
):
    from weightgen.data import load_dataset
    from weightgen.idxfiles import GZIP_MD5

    monkeypatch.delenv("WEIGHTGEN_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    only_test = tmp_path / "fashion-mnist"
    only_test.mkdir()
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        shutil.copy(locate("fashion-mnist", name, mnist_dir, download=False), only_test / name)
    assert len(load_test_split("fashion_mnist", tmp_path, download=False)) == 10000
    with pytest.raises(
        WeightgenError, match="fashion-mnist file train-images-idx3-ubyte.gz not found"
    ):
        load_dataset("fashion_mnist", tmp_path, download=False)
    # a download from the upstream mirror is still checked by the official gzip's MD5
    assert (
        GZIP_MD5["fashion-mnist"]["train-images-idx3-ubyte.gz"]
        == "8d4fb7e6c68d591d4c3dfef9ec88bf0d"
    )


def test_fashion_mnist_file_with_other_contents_is_refused(mnist_dir, tmp_path):
    from weightgen.idxfiles import read_idx

    original = locate("fashion-mnist", "train-labels-idx1-ubyte.gz", mnist_dir, download=False)
    raw = bytearray(gzip.decompress(original.read_bytes()))
    raw[-1] = (raw[-1] + 1) % 10  # one label changed
    forged = tmp_path / "train-labels-idx1-ubyte.gz"
    forged.write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(WeightgenError, match="checksum mismatch"):
        read_idx(forged, "fashion-mnist")


def test_npz_arrays_become_a_dataset(tmp_path):
    import numpy as np

    from weightgen.data import DataConfig, input_shape, load_dataset

    path = write_npz(tmp_path / "mine.npz")
    cfg = DataConfig(name="npz", path=str(path))
    data = load_dataset(cfg)
    assert (len(data.train), len(data.validation), len(data.test)) == (36, 4, 10)
    assert data.input_shape == input_shape(cfg) == (1, 6, 6) and data.num_classes == 3
    assert data.train.images.dtype == torch.float32 and data.train.images.max() <= 1.0
    path = write_npz(
        tmp_path / "val.npz", x_val=np.zeros((5, 6, 6), np.float32), y_val=np.arange(5) % 3
    )
    assert len(load_dataset(DataConfig(name="npz", path=str(path))).validation) == 5


@pytest.mark.parametrize(
    "arrays, message",
    [
        ({"y_test": None}, r"missing arrays \['y_test'\]"),
        ({"x_train": __import__("numpy").zeros((40, 36), "uint8")}, "must be \\(N, H, W\\) or"),
        ({"x_test": __import__("numpy").full((10, 6, 6), 2.0)}, "must lie in \\[0, 1\\]"),
        ({"x_test": __import__("numpy").full((10, 6, 6), float("nan"))}, "NaN or infinite"),
        ({"x_test": __import__("numpy").zeros((10, 6, 6), "int32")}, "must be uint8 or float"),
        ({"y_train": -__import__("numpy").ones(40, "int64")}, "integer class indices"),
        ({"y_train": __import__("numpy").zeros(40, "float32")}, "integer class indices"),
        ({"y_test": __import__("numpy").zeros(9, "int64")}, "one label per image"),
        ({"x_test": __import__("numpy").zeros((10, 5, 5), "uint8")}, "different shapes"),
    ],
)
def test_bad_npz_arrays_are_one_line_errors(tmp_path, arrays, message):
    from weightgen.data import DataConfig, load_dataset

    path = write_npz(tmp_path / "bad.npz", **arrays)
    with pytest.raises(WeightgenError, match=message):
        load_dataset(DataConfig(name="npz", path=str(path)))


def test_an_unreadable_npz_file_is_named(tmp_path):
    from weightgen.data import DataConfig, load_dataset

    (tmp_path / "broken.npz").write_text("not a zip")
    with pytest.raises(
        WeightgenError, match="broken.npz: not an .npz file \\(no such file, or not a zip archive"
    ):
        load_dataset(DataConfig(name="npz", path=str(tmp_path / "broken.npz")))


def test_a_users_npz_file_trains_samples_and_evaluates_end_to_end(tmp_path):
    import json

    import numpy as np
    import yaml
    from sklearn.datasets import load_digits

    from weightgen.cli import main

    digits = load_digits()
    x = (digits.images * 255 / 16).astype(np.uint8)  # (1797, 8, 8)
    np.savez(
        tmp_path / "digits.npz",
        x_train=x[:1400],
        y_train=digits.target[:1400],
        x_test=x[1400:],
        y_test=digits.target[1400:],
    )
    config = {
        "name": "npz_run",
        "method": "hypernetwork",
        "data": {"name": "npz", "path": str(tmp_path / "digits.npz"), "ood": None},
        "target": digits_target(),  # input_shape comes from the file: (1, 8, 8)
        "hypernet": {"noise_dim": 8, "code_dim": 3, "extractor_hidden": [32]},
        "objective": {"lambda": 100.0},
        "train": {
            "steps": 60,
            "noise_samples": 8,
            "images_per_network": 16,
            "lr": 3e-3,
            "validate_every": 60,
            "validation_networks": 8,
            "checkpoint_every": 60,
        },
    }
    (tmp_path / "npz.yaml").write_text(yaml.safe_dump(config))
    run = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "--config",
                str(tmp_path / "npz.yaml"),
                "--out",
                str(run),
                "--threads",
                "1",
                "--no-progress",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "sample",
                str(run),
                "-n",
                "6",
                "-o",
                str(tmp_path / "nets.safetensors"),
                "--threads",
                "1",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "evaluate",
                str(tmp_path / "nets.safetensors"),
                "--data",
                f"npz:{tmp_path / 'digits.npz'}",
                "--json",
                str(tmp_path / "m.json"),
                "--threads",
                "1",
            ]
        )
        == 0
    )
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["images"] == 397 and metrics["networks"] == 6
    assert metrics["accuracy_mean"] > 0.3  # from chance (0.1) in 60 steps


def test_a_target_that_does_not_fit_the_dataset_is_refused_before_training(tmp_path):
    import yaml

    from weightgen.cli import main

    config = {
        "name": "wrong",
        "data": {"name": "digits"},
        "target": {"preset": "mnist_cnn"},
        "train": {"steps": 1},
    }
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    from weightgen.config import load_config
    from weightgen.loop import train

    with pytest.raises(
        WeightgenError,
        match=r"read inputs of shape \(1, 28, 28\), dataset "
        r"digits has \(1, 8, 8\)",
    ):
        train(load_config(tmp_path / "c.yaml"), tmp_path / "run", device="cpu", progress=False)
    assert (
        main(["train", "--config", str(tmp_path / "c.yaml"), "--out", str(tmp_path / "run2")]) == 2
    )
