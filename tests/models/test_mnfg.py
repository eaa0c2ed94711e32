import json

import pytest
import torch

from tests.helpers import SMALL_REPORT as SMALL
from weightgen.cli import main
from weightgen.models.mnfg import MNFG, CouplingFlow, MNFGConfig, MNFLayer
from weightgen.targets import LayerSpec, forward, mnist_cnn


def test_coupling_flow_is_invertible_with_the_right_log_determinant():
    torch.manual_seed(0)
    flow = CouplingFlow(4, steps=2, hidden=8).double()
    z = torch.randn(3, 4, dtype=torch.float64)
    masks = [m.double() for m in flow.draw_masks(3)]
    out, logdet = flow(z, masks)
    torch.testing.assert_close(flow.inverse(out, masks), z)
    for i in range(3):
        jac = torch.autograd.functional.jacobian(
            lambda v: flow(v.unsqueeze(0), [m[i : i + 1] for m in masks])[0][0], z[i]
        )
        torch.testing.assert_close(logdet[i], torch.linalg.slogdet(jac).logabsdet)


@pytest.mark.parametrize(
    "layer",
    [LayerSpec("c", "conv", 2, 3, kernel_size=3), LayerSpec("d", "linear", 4, 3)],
    ids=["conv", "dense"],
)
def test_gaussian_kl_matches_monte_carlo(layer):
    torch.manual_seed(1)
    mnf = MNFLayer(layer, MNFGConfig()).double()
    with torch.no_grad():  # a posterior far from the prior, std inside the clip
        mnf.log_std_w.uniform_(-2.0, -0.8)
        mnf.log_std_b.uniform_(-2.0, -0.8)
        mnf.mu_b.normal_()
    z = torch.randn(mnf.zdim, dtype=torch.float64)
    mean_w, mean_b = mnf._scale_rows(z)
    q = torch.distributions.Normal(
        torch.cat([mean_w.flatten(), mean_b]), torch.cat([mnf.std_w().flatten(), mnf.std_b()])
    )
    p = torch.distributions.Normal(0.0, 1.0)
    w = q.sample((200000,))
    monte_carlo = (q.log_prob(w) - p.log_prob(w)).sum(-1).mean()
    assert mnf.gaussian_kl(z).item() == pytest.approx(monte_carlo.item(), rel=0.02)


def test_kl_bound_is_finite_and_differentiable():
    model = MNFG(mnist_cnn())
    bound = model.kl_bound()
    assert torch.isfinite(bound)
    bound.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert len(grads) > 0 and all(torch.isfinite(g).all() for g in grads)
    assert sum(g.abs().sum() for g in grads) > 0  # the bound depends on the parameters


def test_sampled_networks_match_the_mean_network_when_noise_vanishes():
    torch.manual_seed(2)
    model = MNFG(mnist_cnn(), MNFGConfig(flows_q=0))
    with torch.no_grad():
        for layer in model.layers:
            layer.q0_log_var.fill_(-60.0)  # z = q0_mean exactly
            layer.log_std_w.fill_(-60.0)
            layer.log_std_b.fill_(-60.0)
    filters = model.sample_filters(2)
    x = torch.rand(4, 1, 28, 28)
    expected = model(x)  # local reparameterisation with zero variance: the mean network
    torch.testing.assert_close(forward(mnist_cnn(), filters, x)[0], expected, rtol=1e-4, atol=1e-4)


def test_noise_draws_reproduce_sampling_and_paths_end_at_samples():
    torch.manual_seed(3)
    model = MNFG(mnist_cnn())
    g = lambda: torch.Generator().manual_seed(5)  # noqa: E731
    sampled = model.sample_filters(3, g())
    again = model.sample_filters(3, g())
    assert all(torch.equal(a, b) for a, b in zip(sampled, again))
    layer = model.layers[1]
    one, two = layer.draw_noise(1, g()), layer.draw_noise(1, g())
    two.base.normal_(), two.weights.normal_()
    mixed = layer.filters_from_noise(one.mix(two, torch.tensor([1.0, 0.5, 0.0])))
    assert mixed.shape == (3, 16, 32 * 25 + 1)
    torch.testing.assert_close(mixed[0], layer.filters_from_noise(one)[0])
    two.masks = one.masks  # the path keeps the first sample's flow masks
    torch.testing.assert_close(mixed[2], layer.filters_from_noise(two)[0])


def test_paths_are_straight_lines_when_z_is_fixed():
    # with z deterministic, W is linear in its Gaussian noise: interpolated = direct path
    torch.manual_seed(4)
    model = MNFG(mnist_cnn())
    with torch.no_grad():
        for layer in model.layers:
            layer.q0_log_var.fill_(-60.0)
            layer.log_std_w.fill_(-1.0)
    t = torch.linspace(0, 1, 5)
    path = model.interpolated_path(t, torch.Generator().manual_seed(6))
    for mat in path:
        w = t.view(-1, 1, 1)
        torch.testing.assert_close(mat, w * mat[-1] + (1 - w) * mat[0], rtol=1e-5, atol=1e-6)
        assert (mat[-1] - mat[0]).abs().max() > 0.1  # two different end points


@pytest.mark.slow
def test_short_training_on_mnist_lowers_the_loss_and_exports(tmp_path, mnist_dir):
    import yaml
    from safetensors.torch import load_file

    config = tmp_path / "mnfg.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "name": "m",
                "method": "mnfg",
                "mnfg": {"steps": 300, "batch_size": 50},
                "train": {"validate_every": 300, "validation_networks": 4, "checkpoint_every": 150},
            }
        )
    )
    run = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "--config",
                str(config),
                "--out",
                str(run),
                "--data-dir",
                str(mnist_dir),
                "--no-progress",
            ]
        )
        == 0
    )
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    ce = [r["cross_entropy"] for r in records if r["kind"] == "train"]
    assert ce[-1] < 0.75 * ce[0]  # ln 10 = 2.30 on the plateau of the first ~100 steps
    assert [r for r in records if r["kind"] == "validation"][-1]["accuracy_mean"] > 0.5
    out = tmp_path / "nets.safetensors"
    assert main(["sample", str(run), "-n", "3", "-o", str(out)]) == 0
    tensors = load_file(str(out))
    net = mnist_cnn().build_module()
    net.load_state_dict({k: v[1] for k, v in tensors.items()}, strict=True)
    report = tmp_path / "report"  # MNFG walks along paths in its noise too (Fig. 5)
    assert (
        main(["report", str(run), "--out", str(report), "--data-dir", str(mnist_dir), *SMALL]) == 0
    )
    (m,) = json.loads((report / "metrics.json").read_text())["sources"].values()
    assert 0.0 <= m["paths"]["direct_min_accuracy_mean"] <= 1.0
    assert any(name.startswith("paths_") for _, name in m["figures"])
