"""The report's protocol sizes (a module of its own, without torch: the command line reads
its defaults before any command runs)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ReportSettings:
    """Sizes of every protocol; the defaults are the paper's (implementation notes)."""

    networks: int = 4000  # 20 ensembles x 200
    ensemble_size: int = 200
    pca_samples: int = 3000
    pca_components: int = 6
    filter_samples: int = 25
    path_pairs: int = 10
    path_points: int = 40
    diversity_networks: int = 20
    adversarial_images: int = 500
    adversarial_ensemble: int = 100
    test_images: int | None = None  # a prefix of the test set, for quick looks
    seed: int = 0
    precision: str = "float32"  # arithmetic of evaluation (not of the adversarial gradients)
