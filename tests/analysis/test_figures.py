import torch

from weightgen.analysis.figures import accuracy_histograms, histogram_range


def test_histogram_axis_is_the_papers_unless_the_bulk_lies_outside():
    assert histogram_range(torch.linspace(97.5, 98.9, 1000)) == (97.0, 99.1)
    # one failed network in 1,000 does not widen the axis; a broad spread does
    with_outlier = torch.cat([torch.linspace(97.5, 98.9, 999), torch.tensor([81.5])])
    assert histogram_range(with_outlier) == (97.0, 99.1)
    low, high = histogram_range(torch.linspace(90.0, 99.5, 1000))
    assert 90.0 <= low <= 90.1 and high == 99.5


def test_accuracy_histograms_draw_one_panel_per_source(tmp_path):
    from unittest import mock

    import matplotlib.pyplot as plt

    created = []
    real = plt.subplots

    def spy(*args, **kwargs):
        fig, axes = real(*args, **kwargs)
        created.append(axes)
        return fig, axes

    with mock.patch.object(plt, "subplots", spy):
        out = accuracy_histograms(
            {"a": torch.rand(50) * 0.02 + 0.97, "b": torch.tensor([0.5, 0.98])}, tmp_path / "h.png"
        )
    assert out.stat().st_size > 1000
    axes = created[0][0]
    assert len(axes) == 2
    assert axes[0].get_title() == "a: 50 networks"
    assert axes[1].get_title().startswith("b: 2 networks\n(1 below")
    counts = [sum(p.get_height() for p in ax.patches) for ax in axes]
    assert counts == [50, 1]  # every network in its panel's bars, but the one left of the axis
