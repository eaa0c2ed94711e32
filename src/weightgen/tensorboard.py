"""An optional TensorBoard view of metrics.jsonl (``pip install weightgen[tensorboard]``).

Every record the training loop logs is also written as scalars under ``RUN/tensorboard/``:
``train/loss``, ``train/cross_entropy``, ``train/entropy``, ``train/accuracy``, ``train/lr``,
``train/steps_per_s``, ``validation/accuracy_mean``, ``validation/ensemble_majority_vote``, ...
at the record's step. ``tensorboard --logdir RUN/tensorboard`` shows them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .errors import WeightgenError

FOLDER = "tensorboard"


class TensorBoardLog:
    """Writes the numeric fields of each metrics record as scalars ``KIND/FIELD``."""

    def __init__(self, run_dir: str | Path):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise WeightgenError(
                "TensorBoard logging needs the tensorboard package: pip "
                "install 'weightgen[tensorboard]' (or tensorboard)"
            ) from None
        self.writer = SummaryWriter(str(Path(run_dir) / FOLDER))

    def write(self, record: dict[str, Any]) -> None:
        kind, step = record["kind"], record["step"]
        for key, value in record.items():
            if (
                key not in ("kind", "step")
                and isinstance(value, (int, float))
                and not isinstance(value, bool)
            ):
                self.writer.add_scalar(f"{kind}/{key}", value, step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
