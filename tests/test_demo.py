"""The first run (`make demo`, `hsfpn-yolo demo`): its settings train a detector that finds objects."""

import cv2
import pytest

from hsfpn_yolo.bench.accuracy import SYNTH
from hsfpn_yolo.demo import UPSCALE, report, run


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
