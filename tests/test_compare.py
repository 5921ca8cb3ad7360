"""`bench compare` and the statistics under every results table: starts and regimes kept apart, pairs, an option's
effect, and the epoch at which a learning curve has converged."""

import json

import pytest

from hsfpn_yolo.bench.compare import run
from hsfpn_yolo.bench.stats import converged_epoch, regime_of, runs_in, summarize
from hsfpn_yolo.cli import main


def results(path, rows, settings=None):
    """Write a results file of (model, start, seed, AP) rows (AP_vt = AP / 2) and return its path."""
    runs = [
        {"model": m, "start": st, "seed": s, "AP": ap, "AP_vt": ap / 2, "params": 1, "epoch_train_s": 2.0}
        for m, st, s, ap in rows
    ]
    path.write_text(json.dumps({"settings": settings or {"epochs": 10, "nbs": 8, "imgsz": 256}, "runs": runs}))
    return path


def stock_and_ours(start, stock, ours):
    """Rows of yolov8n and yolov8n-hsfpn over seeds 0, 1, 2 from one start."""
    return [("yolov8n", start, s, ap) for s, ap in enumerate(stock)] + [
        ("yolov8n-hsfpn", start, s, ap) for s, ap in enumerate(ours)
    ]


def test_starts_side_by_side_against_stock(tmp_path):
    """Each start is compared with the stock model of the same start; a pretrained run of an older file (which named
    its checkpoint as the start) counts as pretrained."""
    rows = stock_and_ours("scratch", (0.10, 0.12, 0.14), (0.20, 0.22, 0.24))
    rows += stock_and_ours("yolov8n-0123456789.pt", (0.40, 0.42, 0.44), (0.41, 0.43, 0.45))
    text = run([results(tmp_path / "a.json", rows)], metrics=("AP",))
    lines = text.splitlines()
    assert lines[0] == "Regime: 10 ep · nbs 8 · 256 px"
    assert (
        lines[2]
        == "| model | vs | AP scratch | ΔAP scratch | n scratch | AP pretrained | ΔAP pretrained | n pretrained |"
    )
    # sd 0.02 on both sides: se = sqrt(2 * 0.02² / 3) = 0.0163
    assert lines[5] == (
        "| yolov8n-hsfpn | yolov8n | 0.220 ± 0.020 (0.200–0.240) | +0.100 ± 0.016 (gain) | 3 "
        "| 0.430 ± 0.020 (0.410–0.450) | +0.010 ± 0.016 (noise) | 3 |"
    )


def test_regimes_stay_apart(tmp_path):
    """Runs of two budgets are shown side by side, never pooled into one mean; a file without `nbs` trained at 64."""
    old = results(tmp_path / "old.json", stock_and_ours("scratch", (0.1, 0.1, 0.1), (0.2, 0.2, 0.2)), {"epochs": 10})
    new = results(tmp_path / "new.json", stock_and_ours("scratch", (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)))
    summary = summarize(runs_in([old, new]))
    assert {(s["model"], s["regime"], round(s["AP"]["mean"], 6)) for s in summary} == {
        ("yolov8n", "10 ep · nbs 64", 0.1),
        ("yolov8n-hsfpn", "10 ep · nbs 64", 0.2),
        ("yolov8n", "10 ep · nbs 8 · 256 px", 0.5),
        ("yolov8n-hsfpn", "10 ep · nbs 8 · 256 px", 0.5),
    }
    text = run([old, new], metrics=("AP",))
    assert text.startswith("Regimes: 10 ep · nbs 64; 10 ep · nbs 8 · 256 px\n")
    assert "| AP scratch, 10 ep · nbs 64 |" in text and "| AP scratch, 10 ep · nbs 8 · 256 px |" in text
    assert regime_of({"epochs": 30, "nbs": 8, "imgsz": 256}, 750) == "30 ep · nbs 8 · 256 px · 750 steps"


def test_pairs_read_several_files_and_times(tmp_path, capsys):
    """Pairs compare models kept in different files (a run in two files counts once) and, with --times, the ratio of
    their mean epoch times."""
    a = results(tmp_path / "a.json", [("a", "scratch", s, ap) for s, ap in enumerate((0.20, 0.22, 0.24))])
    b = results(tmp_path / "b.json", [("b", "scratch", s, ap) for s, ap in enumerate((0.10, 0.12, 0.14))])
    b_rows = json.loads(b.read_text())
    b_rows["runs"].append({**b_rows["runs"][0], "model": "a", "AP": 0.9, "epoch_train_s": 9.0})  # a's seed 0 again
    for r in b_rows["runs"]:
        r["epoch_train_s"] = 1.0 if r["model"] == "b" else r["epoch_train_s"]
    b.write_text(json.dumps(b_rows))
    assert main(["bench", "compare", str(a), str(b), "--pairs", "a:b", "--times"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == "| a − b | scratch | +0.100 ± 0.016 (gain) | +0.050 ± 0.008 (gain) | 2.00 |"
    assert main(["bench", "compare", str(a), "--pairs", "a:c"]) == 2
    assert "error: no runs of c in these files; they hold a" in capsys.readouterr().err
    assert main(["bench", "compare", str(a), "--pairs", "a-b"]) == 2
    assert "write a pair as MODEL_A:MODEL_B" in capsys.readouterr().err


def test_option_effect_per_model_and_start(tmp_path):
    """--with compares the same model and start trained without (the positional files, renamed by --alias) and with
    an option; models on one side only are left out."""
    without = results(tmp_path / "w0.json", [("m-old", "scratch", s, ap) for s, ap in enumerate((0.10, 0.12, 0.14))])
    with_ = results(tmp_path / "w1.json", [("m", "scratch", s, ap) for s, ap in enumerate((0.20, 0.22, 0.24))])
    with_rows = json.loads(with_.read_text())
    with_rows["runs"].append({**with_rows["runs"][0], "model": "other"})
    with_.write_text(json.dumps(with_rows))
    text = run([without], with_=[with_], alias={"m-old": "m"}, metrics=("AP",))
    row = "| m | scratch | 0.120 ± 0.020 (0.100–0.140) | 0.220 ± 0.020 (0.200–0.240) | +0.100 ± 0.016 (gain) |"
    assert row in text.splitlines() and "other" not in text


def test_not_a_results_file(tmp_path, capsys):
    """A file that is not `bench accuracy` output is one error line naming it."""
    (tmp_path / "x.json").write_text(json.dumps({"models": {}}))
    assert main(["bench", "compare", str(tmp_path / "x.json")]) == 2
    assert "x.json is not a `bench accuracy` results file" in capsys.readouterr().err


@pytest.mark.parametrize(
    "curve,epoch",
    [
        ([0.1, 0.5, 0.9, 0.95, 1.0], 4),  # 0.95 is the first value within 95 % of the best (1.0)
        ([0.2, None, 0.97, 1.0, 0.99], 3),  # an epoch without validation is skipped
        ([0.5, 0.4], 1),  # the best is the first epoch
        ([None, None], None),
        ([], None),
    ],
)
def test_converged_epoch(curve, epoch):
    assert converged_epoch(curve) == epoch


def test_curves_view_reads_each_runs_learning_curve(tmp_path, capsys):
    """--curves prints, per run that recorded its curve, the best AP, its epoch and the first epoch within 95 %."""
    path = results(tmp_path / "c.json", [("yolov8n", "scratch", 0, 0.5), ("yolov8n", "pretrained", 0, 0.6)])
    data = json.loads(path.read_text())
    data["runs"][0]["curve"] = {"AP": [0.1, 0.3, 0.48, 0.5, 0.49]}
    path.write_text(json.dumps(data))  # the pretrained run has no curve: left out
    assert main(["bench", "compare", str(path), "--curves"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[2].startswith("| model | start | seed | epochs | best AP | at epoch | first epoch ≥ 95% of best |")
    assert lines[4] == "| yolov8n | scratch | 0 | 5 | 0.500 | 4 | 3 | 0.480 | 0.490 |" and len(lines) == 5


def test_a_single_seed_gets_no_verdict(tmp_path):
    """A difference with one seed on a side has no spread to be judged by: it says so instead of 'noise'."""
    rows = stock_and_ours("scratch", (0.10, 0.12, 0.14), (0.50,))
    text = run([results(tmp_path / "a.json", rows)], metrics=("AP",))
    assert "| yolov8n-hsfpn | yolov8n | 0.500 ± 0.000 (0.500–0.500) | +0.380 ± 0.012 (too few seeds) | 1 |" in text


def test_seeds_keep_the_runs_of_those_seeds(tmp_path, capsys):
    """`--seeds 0,1,2` shows what the first three of five seeds said, in the main files and the --with files alike."""
    five = stock_and_ours("scratch", (0.10, 0.12, 0.14, 0.30, 0.32), (0.20, 0.22, 0.24, 0.20, 0.22))
    path = results(tmp_path / "a.json", five)
    main(["bench", "compare", str(path), "--seeds", "0,1,2", "--metrics", "AP"])
    assert "| +0.100 ± 0.016 (gain) | 3 |" in capsys.readouterr().out
    assert "| 5 |" in run([path], metrics=("AP",)) and "(gain)" not in run([path], metrics=("AP",))
    same = "| yolov8n | scratch | 0.120 ± 0.020 (0.100–0.140) | 0.120 ± 0.020 (0.100–0.140) | +0.000 ± 0.016 (noise) |"
    assert same in run([path], with_=[path], metrics=("AP",), seeds=[0, 1, 2]).splitlines()
