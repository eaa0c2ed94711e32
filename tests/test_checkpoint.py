import os
import pickle

import pytest
import torch

from weightgen.runfolder import list_checkpoints, load_checkpoint, load_latest, save_checkpoint
from weightgen.errors import WeightgenError

MARKER = "weightgen_pwned"


class Exploit:
    def __reduce__(self):
        return (os.system, (f"touch {MARKER}",))


def test_malicious_pickle_runs_nothing_and_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "checkpoints" / "step-0000001.pt"
    path.parent.mkdir()
    torch.save({"format": "weightgen-checkpoint/1", "step": 1, "evil": Exploit()}, path)
    with pytest.raises(WeightgenError, match="unreadable or unsafe checkpoint"):
        load_checkpoint(path)
    with pytest.raises(WeightgenError, match="no readable checkpoint"):
        load_latest(tmp_path)
    assert not (tmp_path / MARKER).exists()
    # a raw pickle (not a torch zip file) is refused too
    path.write_bytes(pickle.dumps(Exploit()))
    with pytest.raises(WeightgenError):
        load_checkpoint(path)
    assert not (tmp_path / MARKER).exists()


def test_save_keeps_the_newest_and_leaves_no_temporary_files(tmp_path):
    for step in (1, 2, 3, 4):
        save_checkpoint(tmp_path, step, {"model": {"w": torch.ones(2) * step}}, keep=2)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step-0000003.pt", "step-0000004.pt"]
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [
        "step-0000003.pt", "step-0000004.pt"]
    payload = load_latest(tmp_path)
    assert payload["step"] == 4 and torch.equal(payload["model"]["w"], torch.full((2,), 4.0))


def test_no_checkpoint_is_none(tmp_path):
    assert load_latest(tmp_path) is None
