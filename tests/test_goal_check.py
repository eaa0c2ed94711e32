"""scripts/goal_check.py: issue 26's goal checked on evaluate --curve --json files."""

import json
import subprocess
import sys

from tests.helpers import REPO, curve_point

SCRIPT = REPO / "scripts" / "goal_check.py"


def write(tmp_path, name, points):
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps({"curve": points}))
    return f"{name}={path}"


def flat(size, ensembles, vote, nll, ood):
    return curve_point(size, ensembles, (vote, vote, vote), nll, (ood, ood, ood))


def run(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True)


def test_margins_over_every_baseline_with_the_deep_ensembles_lead(tmp_path):
    de = write(tmp_path, "de", [flat(10, 1, 0.9039, 0.2771, 0.883)])
    mnfg = write(
        tmp_path, "mnfg", [flat(10, 20, 0.9110, 0.2474, 0.767), flat(200, 1, 0.9146, 0.2424, 0.804)]
    )
    good = write(
        tmp_path, "good", [flat(10, 20, 0.9123, 0.2454, 0.897), flat(200, 1, 0.9150, 0.2414, 0.914)]
    )
    out = run("--deep-ensemble", de, "--mnfg", mnfg, "--vote-margin", "0.5", good)
    assert out.returncode == 0, out.stderr
    row = out.stdout.strip().splitlines()[-1]
    # vote of 10: 91.23 - 90.39 - 0.5 = +0.34 over the deep ensemble, +0.13 over MNFG
    # vote of 200: 91.50 - 90.39 (the deep ensemble's 10) and - 91.46 = +0.04
    # NLL of 200: 0.2424 - 0.2414; AUROC: 0.897 and 0.914 - 0.883 (the deep ensemble)
    assert row == (
        "| good | +0.13 (2/2) | +0.04 (2/2) | +0.0020 (2/2) | +0.0010 (2/2) "
        "| +0.014 (2/2) | +0.031 (2/2) | 12/12 |"
    )
    # 0.2 points more lead demanded over the deep ensemble turns its vote of 10 into a loss
    strict = run("--deep-ensemble", de, "--vote-margin", "0.9", good)
    assert strict.stdout.strip().splitlines()[-1].startswith("| good | -0.06 (0/1) | +1.11 (1/1)")


def test_sources_given_as_recorded_numbers_meet_the_same_margins(tmp_path):
    good = write(
        tmp_path, "good", [flat(10, 20, 0.9123, 0.2454, 0.897), flat(200, 1, 0.9150, 0.2414, 0.914)]
    )
    de = "de=vote:90.39,nll:0.2771,auroc:0.883"
    mnfg = "mnfg=vote:91.10/91.46,nll:0.2474/0.2424,auroc:0.767/0.804"
    out = run("--deep-ensemble", de, "--mnfg", mnfg, "--vote-margin", "0.5", good)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == (
        "| good | +0.13 (2/2) | +0.04 (2/2) | +0.0020 (2/2) | +0.0010 (2/2) "
        "| +0.014 (2/2) | +0.031 (2/2) | 12/12 |"
    )
    # the candidate too, as the numbers a table recorded of it
    recorded = "good=vote:91.23/91.50,nll:0.2454/0.2414,auroc:0.897/0.914"
    again = run("--deep-ensemble", de, "--mnfg", mnfg, "--vote-margin", "0.5", recorded)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip().splitlines()[-1] == out.stdout.strip().splitlines()[-1]
    for spec, message in (
        ("m=vote:91.1,ece:0.02", "'ece' is not one of vote, nll, auroc"),
        ("m=vote:91.1/91.4/91.5", "has more values than sizes"),
        ("m=vote:high", "'vote:high' is not vote:NUMBER[/NUMBER]"),
    ):
        bad = run("--mnfg", spec, good)
        assert bad.returncode != 0 and message in bad.stderr and "Traceback" not in bad.stderr


def test_a_tie_to_float32_precision_is_not_a_win(tmp_path):
    # evaluate's accuracies are float32: 4961 of 5000 images reads 0.9922000169754028, which
    # is above a baseline recorded as 99.22 % by float32 rounding alone
    tied = write(
        tmp_path,
        "tied",
        [flat(10, 20, 0.9916, 0.03, 0.99), flat(200, 1, 0.9922000169754028, 0.03, 0.99)],
    )
    out = run("--mnfg", "m=vote:99.10/99.22,nll:0.0357/0.0340,auroc:0.9975/0.9982", tied)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1].startswith("| tied | +0.06 (1/1) | +0.00 (0/1) |")


def test_bad_input_is_one_line(tmp_path):
    no_ood = tmp_path / "plain.json"
    no_ood.write_text(json.dumps({"curve": [curve_point(10, 1, (0.9, 0.9, 0.9), 0.3)]}))
    for args, message in (
        (["x=1.json"], "give at least one --deep-ensemble or --mnfg"),
        (["--mnfg", f"m={no_ood}", f"c={no_ood}"], "no ood_auroc (pass --ood)"),
        (["--mnfg", f"m={tmp_path / 'none.json'}", "c=x"], "none.json: not a readable JSON"),
    ):
        out = run(*args)
        assert out.returncode != 0 and message in out.stderr and "Traceback" not in out.stderr
