"""The official gzip'd IDX files of MNIST and Fashion-MNIST: found, downloaded, verified.

Files are looked for in ``--data-dir``, then ``$WEIGHTGEN_DATA``, then the user cache
(``$XDG_CACHE_HOME/weightgen`` or ``~/.cache/weightgen``); each folder may hold the files
directly or in a ``mnist/`` (``fashion-mnist/``) sub-folder. Files missing everywhere are
downloaded into the cache from public mirrors. A file is accepted when the SHA-256 of its
uncompressed contents is the recorded one (so re-compressed copies of the same data, Debian's,
are accepted too) or the MD5 of the official gzip file (what a download from the upstream
mirror is checked against as well).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import tempfile
import urllib.request
from pathlib import Path

import numpy as np
import torch

from .errors import WeightgenError
from .split import Split

# file name -> SHA-256 of the uncompressed IDX contents
CHECKSUMS: dict[str, dict[str, str]] = {
    "mnist": {
        "train-images-idx3-ubyte.gz": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        "train-labels-idx1-ubyte.gz": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        "t10k-images-idx3-ubyte.gz": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        "t10k-labels-idx1-ubyte.gz": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        "train-labels-idx1-ubyte.gz": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        "t10k-images-idx3-ubyte.gz": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        "t10k-labels-idx1-ubyte.gz": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    },
}

# file name -> MD5 of the official gzip file (the checksums torchvision uses)
GZIP_MD5: dict[str, dict[str, str]] = {
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    },
}

MIRRORS = {
    "mnist": [
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ],
    "fashion-mnist": ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"],
}


def cache_dir() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "weightgen"


def _search_folders(dataset: str, data_dir: str | os.PathLike | None) -> list[Path]:
    roots = [Path(data_dir)] if data_dir else []
    if os.environ.get("WEIGHTGEN_DATA"):
        roots.append(Path(os.environ["WEIGHTGEN_DATA"]))
    roots.append(cache_dir())
    return [folder for root in roots for folder in (root, root / dataset)]


def _download(dataset: str, name: str) -> Path:
    """Fetch one file into the cache from the first mirror that serves the right contents."""
    target = cache_dir() / dataset / name
    target.parent.mkdir(parents=True, exist_ok=True)
    for mirror in MIRRORS[dataset]:
        try:
            with urllib.request.urlopen(mirror + name, timeout=30) as response:
                payload = response.read()
            verify(payload, gzip.decompress(payload), dataset, name, mirror + name)
        except (OSError, EOFError, WeightgenError):
            continue
        fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".part")
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
        return target
    raise WeightgenError(
        f"{dataset} file {name} not found locally and could not be downloaded; put the official "
        f"files in a folder and pass --data-dir or set WEIGHTGEN_DATA"
    )


def known(dataset: str, name: str) -> bool:
    return name in CHECKSUMS.get(dataset, {}) or name in GZIP_MD5.get(dataset, {})


def verify(packed: bytes, raw: bytes, dataset: str, name: str, where: str) -> None:
    """Accept a file by the SHA-256 of its contents ``raw`` or the MD5 of its gzip ``packed``."""
    if hashlib.sha256(raw).hexdigest() != CHECKSUMS.get(dataset, {}).get(name) and hashlib.md5(
        packed
    ).hexdigest() != GZIP_MD5.get(dataset, {}).get(name):
        raise WeightgenError(
            f"{where}: checksum mismatch (corrupt or not the official {dataset} "
            f"file); delete it and download it again"
        )


def read_idx(path: Path, dataset: str = "mnist", name: str | None = None) -> np.ndarray:
    """Read one verified gzip'd IDX file into a uint8 array."""
    name = name or path.name
    try:
        packed = path.read_bytes()
        raw = gzip.decompress(packed)
    except (OSError, EOFError) as err:
        raise WeightgenError(
            f"{path}: not a readable gzip file ({err}); delete it and download it again"
        ) from None
    verify(packed, raw, dataset, name, str(path))
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def locate(
    dataset: str, name: str, data_dir: str | os.PathLike | None = None, download: bool = True
) -> Path:
    """Path of one data file: the first search folder that has it, else a fresh download."""
    if not known(dataset, name):
        raise WeightgenError(f"unknown data file {dataset}/{name}")
    for folder in _search_folders(dataset, data_dir):
        if (folder / name).is_file():
            return folder / name
    if not download:
        raise WeightgenError(
            f"{dataset} file {name} not found in --data-dir, $WEIGHTGEN_DATA or {cache_dir()}"
        )
    return _download(dataset, name)


def load_split(
    dataset: str, prefix: str, data_dir: str | os.PathLike | None = None, download: bool = True
) -> Split:
    """One split ("train" or "t10k") as float images in [0, 1] and int64 labels."""
    images_name, labels_name = f"{prefix}-images-idx3-ubyte.gz", f"{prefix}-labels-idx1-ubyte.gz"
    images = read_idx(locate(dataset, images_name, data_dir, download), dataset, images_name)
    labels = read_idx(locate(dataset, labels_name, data_dir, download), dataset, labels_name)
    x = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)  # (N, 1, 28, 28)
    return Split(x, torch.from_numpy(labels.astype(np.int64)))
