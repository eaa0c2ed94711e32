import gzip
import shutil

import pytest
import torch

from weightgen.data import (load_fashion_mnist_test, load_mnist, locate,
                            training_batch_indices)
from weightgen.errors import WeightgenError


def test_real_mnist_split_and_facts(mnist):
    assert len(mnist.train) == 55000 and len(mnist.validation) == 5000 and len(mnist.test) == 10000
    assert mnist.train.images.shape == (55000, 1, 28, 28)
    assert mnist.train.images.dtype == torch.float32
    assert 0.0 == mnist.test.images.min() and mnist.test.images.max() == 1.0
    # the validation split is the first 5,000 of the training file
    assert mnist.validation.labels[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    counts = torch.bincount(torch.cat([mnist.validation.labels, mnist.train.labels]), minlength=10)
    assert counts.tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


def test_fashion_mnist_test_set(mnist_dir):
    fashion = load_fashion_mnist_test(mnist_dir, download=False)
    assert fashion.images.shape == (10000, 1, 28, 28)
    assert torch.bincount(fashion.labels).tolist() == [1000] * 10


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
    assert sorted(stream[size:2 * size].tolist()) == list(range(size))
    assert not torch.equal(stream[:size], stream[size:2 * size])  # reshuffled each epoch
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
    from weightgen import data
    served, url = mirror
    monkeypatch.delenv("WEIGHTGEN_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setitem(data.MIRRORS, "mnist", ["http://127.0.0.1:9/nothing/", url])
    mnist = load_mnist(tmp_path / "empty")
    assert len(mnist.test) == 10000
    cached = tmp_path / "cache" / "weightgen" / "mnist"
    assert sorted(p.name for p in cached.iterdir()) == sorted(p.name for p in served.iterdir())


def test_a_mirror_serving_wrong_bytes_is_refused(mirror, tmp_path, monkeypatch):
    from weightgen import data
    served, url = mirror
    (served / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(b"\x00" * 10008))
    monkeypatch.delenv("WEIGHTGEN_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setitem(data.MIRRORS, "mnist", [url])
    with pytest.raises(WeightgenError, match="t10k-labels-idx1-ubyte.gz not found locally and "
                                             "could not be downloaded"):
        load_mnist(tmp_path / "empty")
    assert not (tmp_path / "cache" / "weightgen" / "mnist" / "t10k-labels-idx1-ubyte.gz").exists()
