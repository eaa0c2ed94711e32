import pytest
import torch
from safetensors.torch import load_file, save_file

from tests.helpers import random_filters
from weightgen.errors import WeightgenError
from weightgen.exchange import load_networks, save_networks
from weightgen.targets import forward, mnist_cnn


def plain_paper_cnn() -> torch.nn.Sequential:
    """The paper's architecture written out by hand, as any PyTorch user would."""
    from collections import OrderedDict

    nn = torch.nn
    return nn.Sequential(
        OrderedDict(
            [
                ("conv1", nn.Conv2d(1, 32, 5, padding=2)),
                ("relu1", nn.ReLU()),
                ("pool1", nn.MaxPool2d(2)),
                ("conv2", nn.Conv2d(32, 16, 5, padding=2)),
                ("relu2", nn.ReLU()),
                ("pool2", nn.MaxPool2d(2)),
                ("flatten", nn.Flatten()),
                ("fc1", nn.Linear(784, 8)),
                ("relu3", nn.ReLU()),
                ("fc2", nn.Linear(8, 10)),
            ]
        )
    )


def test_export_loads_into_plain_pytorch_and_computes_the_same(tmp_path):
    spec = mnist_cnn()
    filters = random_filters(spec, 3)
    z = torch.rand(3, 300)
    path = tmp_path / "nets.safetensors"
    save_networks(path, spec, filters, z)

    tensors = load_file(str(path))  # no weightgen needed to read it
    assert {k: tuple(v.shape) for k, v in tensors.items()} == {
        "conv1.weight": (3, 32, 1, 5, 5),
        "conv1.bias": (3, 32),
        "conv2.weight": (3, 16, 32, 5, 5),
        "conv2.bias": (3, 16),
        "fc1.weight": (3, 8, 784),
        "fc1.bias": (3, 8),
        "fc2.weight": (3, 10, 8),
        "fc2.bias": (3, 10),
        "z": (3, 300),
    }
    x = torch.rand(7, 1, 28, 28)
    expected = forward(spec, filters, x)
    for i in range(3):
        net = plain_paper_cnn()
        net.load_state_dict({k: v[i] for k, v in tensors.items() if k != "z"}, strict=True)
        torch.testing.assert_close(net(x), expected[i], rtol=1e-5, atol=1e-5)


def test_roundtrip_through_the_loader(tmp_path):
    spec = mnist_cnn()
    filters = random_filters(spec, 2)
    save_networks(tmp_path / "a.safetensors", spec, filters, extra={"run": "x"})
    nets = load_networks(tmp_path / "a.safetensors")
    assert nets.spec == spec and len(nets) == 2 and nets.z is None
    assert nets.metadata["run"] == "x"
    for a, b in zip(nets.filters(), filters):
        assert torch.equal(a, b)


def _rewrite(path, mutate):
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        metadata = f.metadata()
    tensors = load_file(str(path))
    mutate(tensors)
    save_file(tensors, str(path), metadata=metadata)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda t: t.pop("fc1.bias"), "missing tensor fc1.bias"),
        (lambda t: t.update({"fc1.bias": torch.zeros(2, 9)}), r"fc1.bias has shape \(2, 9\)"),
        (lambda t: t.update({"extra": torch.zeros(2)}), "unexpected tensor extra"),
        (lambda t: t.update({"z": torch.zeros(5, 3)}), "tensor z has shape"),
    ],
)
def test_bad_files_are_refused_naming_the_key(tmp_path, mutate, message):
    path = tmp_path / "n.safetensors"
    save_networks(path, mnist_cnn(), random_filters(mnist_cnn(), 2))
    _rewrite(path, mutate)
    with pytest.raises(WeightgenError, match=message):
        load_networks(path)


def test_not_a_safetensors_file(tmp_path):
    path = tmp_path / "n.safetensors"
    path.write_bytes(b"\x00" * 64)
    with pytest.raises(WeightgenError, match="not a readable safetensors file"):
        load_networks(path)
    save_file({"a": torch.zeros(1)}, str(path))
    with pytest.raises(WeightgenError, match="not a weightgen networks file"):
        load_networks(path)


def test_readme_loading_snippet_works(tmp_path, monkeypatch):
    import re

    from tests.helpers import REPO

    readme = (REPO / "docs" / "reference" / "exchange.md").read_text()
    snippet = next(
        block for block in re.findall(r"```python\n(.*?)```", readme, re.S) if "load_file" in block
    )
    spec = mnist_cnn()
    filters = random_filters(spec, 2)
    monkeypatch.chdir(tmp_path)
    save_networks("nets.safetensors", spec, filters, torch.rand(2, 300))
    scope = {"i": 1}
    exec(snippet, scope)
    x = torch.rand(3, 1, 28, 28)
    torch.testing.assert_close(scope["net"](x), forward(spec, filters, x)[1], rtol=1e-5, atol=1e-5)
