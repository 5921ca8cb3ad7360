"""What every benchmark shares: model names, the run header (machine, versions, command) and Markdown tables."""

from __future__ import annotations

import json
import os
import platform
import re
import shlex
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

FAMILIES = (  # per output set: stock first, then ours
    "yolov8{}",
    "yolov8{}-finepath",
    "yolov8{}-hsfpn",
    "yolov8{}-p2",
    "yolov8{}-finepath-p2",
    "yolov8{}-hsfpn-p2",
)


def default_models(scale: str = "n") -> list[str]:
    """Return the six benchmark model names at one scale, e.g. yolov8n, yolov8n-finepath ... yolov8n-hsfpn-p2."""
    return [f.format(scale) for f in FAMILIES]


def model_yaml(name: str) -> str:
    """Return the YAML to build model `name`: ours from cfg/, Ultralytics' own by name, or a path as given.

    Args:
        name (str): e.g. 'yolov8n', 'yolov8s-p2', 'yolov8n-hsfpn', 'yolov8n-finepath', or a path to a model YAML.
    """
    if name.endswith((".yaml", ".yml")):
        return name
    from hsfpn_yolo.lookup import packaged_yaml

    ours = packaged_yaml(name)
    # A path next to ours, scale letter kept: Ultralytics reads the scale from it and builds the unscaled file
    return str(ours.with_name(f"{name}.yaml")) if ours else f"{name}.yaml"


def model_name(model: str) -> str:
    """Return the display name of a model given by name or YAML path (the file stem)."""
    return Path(model).stem if model.endswith((".yaml", ".yml")) else model


def baseline_of(name: str) -> str:
    """Return the plain YOLO of the same generation and scale, the denominator of every ratio (e.g. yolov8s-hsfpn ->
    yolov8s, yolo26n-hsfpn-p2 -> yolo26n)."""
    stem = Path(name).stem
    m = re.match(r"yolo(v\d+|\d+)[nslmx]", stem)
    return m.group(0) if m else stem


def is_p2(name: str) -> bool:
    """Return whether model `name` (name or YAML path) has the extra stride-4 P2 output, e.g. yolov8n-hsfpn-p2."""
    return "-p2" in Path(name).stem


def counterpart(name: str) -> str:
    """Return the stock model an HS-FPN model is measured against: yolo..{s}-p2 for P2 models, yolo..{s}-obb for OBB
    models, else yolo..{s}.

    Args:
        name (str): Model name or YAML path, e.g. 'yolov8n-hsfpn', 'cfg/study/yolov8n-hsfpn-native-ref-p2.yaml'.
    """
    base = baseline_of(name)
    return f"{base}-p2" if is_p2(name) else f"{base}-obb" if Path(name).stem.endswith("-obb") else base


def command_line() -> str:
    """Return the command that started this process, as it could be typed again."""
    argv = list(sys.argv)
    argv[0] = "hsfpn-yolo" if Path(argv[0]).name == "hsfpn-yolo" else f"{Path(sys.executable).name} {argv[0]}"
    return " ".join([argv[0], *map(shlex.quote, argv[1:])])


def environment() -> dict[str, Any]:
    """Return the machine, date, versions and command of this run."""
    import torch
    import ultralytics

    cpu = platform.processor() or platform.machine()
    try:  # the model name is more useful than the architecture where Linux tells it
        cpu = next(ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "date": datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": f"{cpu}, {os.cpu_count()} logical cores, torch threads {torch.get_num_threads()}",
        "gpu": gpu,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "ultralytics": ultralytics.__version__,
        "command": command_line(),
    }


def header(env: dict[str, Any]) -> str:
    """Return the Markdown preamble naming machine, date, versions and command."""
    lines = [
        f"- Machine: {env['machine']}" + (f"; GPU: {env['gpu']}" if env.get("gpu") else "; no GPU"),
        f"- Date: {env['date']}",
        f"- Versions: Python {env['python']}, torch {env['torch']}, ultralytics {env['ultralytics']}",
        f"- Command: `{env['command']}`",
    ]
    return "\n".join(lines)


def md_table(rows: list[dict[str, Any]], columns: list[str], align: str | None = None) -> str:
    """Return rows as a Markdown table; missing values print as '–'.

    Args:
        rows (list[dict]): One dict per row, already formatted or numbers.
        columns (list[str]): Keys to print, in order (also the header).
        align (str, optional): One 'l'/'r' per column; default left for the first column, right for the rest.
    """
    align = align or "l" + "r" * (len(columns) - 1)
    out = ["| " + " | ".join(columns) + " |", "|" + "|".join(":---" if a == "l" else "---:" for a in align) + "|"]
    for r in rows:
        out.append("| " + " | ".join("–" if r.get(c) is None else str(r[c]) for c in columns) + " |")
    return "\n".join(out)


def save_json(path: str | Path, data: dict[str, Any]) -> Path:
    """Write `data` as indented JSON, creating parent folders; return the path.

    The file is replaced atomically, so a benchmark stopped while saving keeps its previous results intact.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")
    os.replace(tmp, path)
    return path


def calibrate_norms(model, imgsz: int = 320, batches: int = 4, seed: int = 0) -> None:
    """Set every BatchNorm's running statistics to those of random images, in place (weights untouched).

    A model fresh from its YAML keeps mean 0 and variance 1, so its eval-mode activations shrink layer by layer
    (to about 1e-8 in YOLOv8n's neck) and a rescaled head can overflow; after this its activations are of order one,
    as in a trained model, which is what latency and parity measurements need.

    Args:
        model (torch.nn.Module): Model to calibrate.
        imgsz (int): Side of the random square images.
        batches (int): Batches of 2 images averaged into the statistics.
        seed (int): Seed of the images.
    """
    import torch

    generator = torch.Generator().manual_seed(seed)
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average over the batches
    training = model.training
    with torch.no_grad():
        model.train()
        for _ in range(batches):
            model(torch.rand(2, 3, imgsz, imgsz, generator=generator))
    model.train(training)
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum


def open_gates(model, generator=None) -> None:
    """Set every HS-FPN residual gate of `model` to random values in [0.5, 1), in place, so the blocks show in its
    output (zero-initialised gates make a fresh model compute the stock one)."""
    import torch

    from hsfpn_yolo.nn import LayerScale

    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, LayerScale):
                m.gamma.copy_(0.5 + 0.5 * torch.rand(m.gamma.shape, generator=generator))


def make_responsive(model, seed: int = 0, logit_std: float = 2.0, imgsz: int = 128) -> None:
    """Make a briefly trained (or fresh) detection model's raw output depend on its input and HS-FPN blocks, in place.

    After one epoch on a small set the head still gives about its initial output: class scores near 0 and the same
    boxes everywhere, so an export that dropped a block could still match. This opens the residual gates to 0.5-1
    and rescales each last 1x1 convolution of the head (bias zeroed) so that its outputs, the box-distribution and
    class logits, have standard deviation `logit_std` on a random input: scores spread over (0, 1) and boxes vary.

    Args:
        model (torch.nn.Module): Ultralytics detection model (YOLOv8-style head with `cv2`/`cv3` branches).
        seed (int): Seed of the gate values and of the calibration input.
        logit_std (float): Target standard deviation of the head's last convolutions.
        imgsz (int): Size of the random calibration input.
    """
    import torch

    generator = torch.Generator().manual_seed(seed)
    head = model.model[-1]
    finals = [branch[-1] for branch in (*head.cv2, *head.cv3)]
    outputs = {}
    hooks = [
        conv.register_forward_hook(lambda m, i, o: outputs.__setitem__(m, o - m.bias.view(-1, 1, 1))) for conv in finals
    ]
    open_gates(model, generator)
    with torch.no_grad():
        training = model.training
        model.eval()(torch.rand(1, 3, imgsz, imgsz, generator=generator))
        model.train(training)
        for conv in finals:
            conv.weight.mul_(logit_std / outputs[conv].std().clamp_min(1e-12))
            conv.bias.zero_()
    for hook in hooks:
        hook.remove()
