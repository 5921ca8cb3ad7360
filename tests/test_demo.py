"""The first run (`make demo`, `hsfpn-yolo demo`): one seed of `bench accuracy`, whose settings train a detector that
finds objects."""

from pathlib import Path

import cv2
import pytest
import torch

from hsfpn_yolo.bench import accuracy
from hsfpn_yolo.bench.training import SEEDS, SYNTH
from hsfpn_yolo.demo import MODEL, UPSCALE, report, run


@pytest.mark.slow
def test_demo_settings_reach_positive_ap_on_a_shortened_run(tmp_path):
    """The demo's training (images, epochs, model, optimizer, seed) validated on 20 images instead of 50: AP above
    zero, a prediction image drawn. (Fewer training images or epochs are not enough: 100 images end at AP 0.)"""
    out = run(val=20, project=tmp_path)
    assert out["tiny"]["AP50"] > 0 and out["tiny"]["AP"] > 0
    image = cv2.imread(out["prediction"])
    assert image.shape[:2] == (SYNTH["imgsz"] * UPSCALE,) * 2
    text = report(out)
    assert out["prediction"] in text and "Tiny-object AP" in text and "yolo predict model=" in text


def last_weights(save_dir: str | Path) -> dict[str, torch.Tensor]:
    """Return the state dict of a run's last checkpoint."""
    return torch.load(Path(save_dir) / "weights" / "last.pt", weights_only=False)["model"].state_dict()


@pytest.mark.slow
def test_demo_is_one_seed_of_bench_accuracy(tmp_path):
    """Shortened alike, the demo and `bench accuracy` at its first seed train the very same weights."""
    demo = run(epochs=1, train=8, val=4, project=tmp_path / "demo")
    bench = accuracy.run(
        [MODEL],
        [SEEDS[0]],
        epochs=1,
        train_images=8,
        val_images=4,
        jobs=1,
        starts=("scratch",),
        project=tmp_path / "bench",
        json_path=None,
    )
    (row,) = bench["runs"]
    assert Path(demo["save_dir"]) == tmp_path / "demo" / "train" and demo["data"] == bench["settings"]["data"]
    ours, theirs = last_weights(demo["save_dir"]), last_weights(row["save_dir"])
    assert ours.keys() == theirs.keys()
    for k in ours:
        torch.testing.assert_close(ours[k], theirs[k], rtol=0, atol=0, msg=k)
    assert {k: demo["tiny"][k] for k in accuracy.METRICS} == {k: row[k] for k in accuracy.METRICS}
