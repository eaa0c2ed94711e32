import json

import pytest
import torch

from weightgen.baselines.mnfg import MNFG, CouplingFlow, MNFGConfig, MNFLayer
from weightgen.cli import main
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
            lambda v: flow(v.unsqueeze(0), [m[i:i + 1] for m in masks])[0][0], z[i])
        torch.testing.assert_close(logdet[i], torch.linalg.slogdet(jac).logabsdet)


@pytest.mark.parametrize("layer", [LayerSpec("c", "conv", 2, 3, kernel_size=3),
                                   LayerSpec("d", "linear", 4, 3)], ids=["conv", "dense"])
def test_gaussian_kl_matches_monte_carlo(layer):
    torch.manual_seed(1)
    mnf = MNFLayer(layer, MNFGConfig()).double()
    with torch.no_grad():  # a posterior far from the prior, std inside the clip
        mnf.log_std_w.uniform_(-2.0, -0.8)
        mnf.log_std_b.uniform_(-2.0, -0.8)
        mnf.mu_b.normal_()
    z = torch.randn(mnf.zdim, dtype=torch.float64)
    mean_w, mean_b = mnf._scale_rows(z)
    q = torch.distributions.Normal(torch.cat([mean_w.flatten(), mean_b]),
                                   torch.cat([mnf.std_w().flatten(), mnf.std_b()]))
    p = torch.distributions.Normal(0.0, 1.0)
    w = q.sample((200000,))
    monte_carlo = (q.log_prob(w) - p.log_prob(w)).sum(-1).mean()
    assert mnf.gaussian_kl(z).item() == pytest.approx(monte_carlo.item(), rel=0.02)


def test_kl_bound_is_finite_and_differentiable():
    model = MNFG(mnist_cnn())
    bound = model.kl_bound()
    assert torch.isfinite(bound)
    bound.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


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
    torch.testing.assert_close(forward(mnist_cnn(), filters, x)[0], expected, rtol=1e-4,
                               atol=1e-4)


def test_short_training_on_mnist_lowers_the_loss_and_exports(tmp_path, mnist_dir):
    import yaml
    from safetensors.torch import load_file
    config = tmp_path / "mnfg.yaml"
    config.write_text(yaml.safe_dump({
        "name": "m", "method": "mnfg", "mnfg": {"steps": 300, "batch_size": 50},
        "train": {"validate_every": 300, "validation_networks": 4, "checkpoint_every": 150}}))
    run = tmp_path / "run"
    assert main(["train", "--config", str(config), "--out", str(run), "--data-dir",
                 str(mnist_dir), "--no-progress"]) == 0
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    ce = [r["cross_entropy"] for r in records if r["kind"] == "train"]
    assert ce[-1] < 0.75 * ce[0]  # ln 10 = 2.30 on the plateau of the first ~100 steps
    assert [r for r in records if r["kind"] == "validation"][-1]["accuracy_mean"] > 0.5
    out = tmp_path / "nets.safetensors"
    assert main(["sample", str(run), "-n", "3", "-o", str(out)]) == 0
    tensors = load_file(str(out))
    net = mnist_cnn().build_module()
    net.load_state_dict({k: v[1] for k, v in tensors.items()}, strict=True)
