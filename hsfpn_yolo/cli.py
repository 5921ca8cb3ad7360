"""The `hsfpn-yolo` command line: dataset conversion, synthetic data, the label check (doctor) and benchmarks.

Each subcommand is one `cmd_*` handler plus one parser block in `build_parser`; handlers import their heavy
dependencies lazily so that `--help` stays fast.

Examples:
    hsfpn-yolo demo
    hsfpn-yolo convert visdrone VisDrone2019-DET-train datasets/VisDrone/train
    hsfpn-yolo convert aitod aitod_train_v1.json aitod/images/train datasets/AI-TOD/train --skip-bad
    hsfpn-yolo synth datasets/synth --train 200 --val 50 --imgsz 640 --seed 0
    hsfpn-yolo tile datasets/VisDrone/train datasets/VisDrone/tiles-640/train --size 640 --overlap 0.2
    hsfpn-yolo predict best.pt frames/ --slice 640 --overlap 0.2
    hsfpn-yolo val best.pt cfg/datasets/VisDrone.yaml --slice 640 --overlap 0.2
    hsfpn-yolo bench speed --json runs/bench/speed.json
    hsfpn-yolo bench accuracy --seeds 0,1,2 --json runs/bench/accuracy.json
    hsfpn-yolo bench accuracy --starts pretrained --seeds 0,1,2 --json runs/bench/accuracy-pretrained.json
    hsfpn-yolo bench profile --models yolov8n,yolov8n-hsfpn
    hsfpn-yolo bench plot --speed runs/bench/speed.json --accuracy runs/bench/accuracy.json --out docs
    hsfpn-yolo bench compare docs/study/default-scratch.json docs/study/default-pretrained.json
    hsfpn-yolo doctor tiny-synth.yaml --imgsz 640 --plot doctor.png
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ERROR_EXIT = 2  # same code argparse uses for usage errors


def cmd_convert_visdrone(args: argparse.Namespace) -> None:
    """Convert one VisDrone2019-DET split."""
    from hsfpn_yolo.data.visdrone import convert_visdrone

    convert_visdrone(args.src, args.dst, skip_bad=args.skip_bad)


def cmd_convert_aitod(args: argparse.Namespace) -> None:
    """Convert one AI-TOD split."""
    from hsfpn_yolo.data.aitod import convert_aitod

    convert_aitod(args.annotations, args.images, args.dst, skip_bad=args.skip_bad)


def cmd_demo(args: argparse.Namespace) -> None:
    """Train the demo model on the built-in synthetic set, draw a prediction and say what to run next."""
    from hsfpn_yolo.demo import report, run

    kwargs = {k: getattr(args, k) for k in ("model", "epochs", "device", "project") if hasattr(args, k)}
    print(report(run(**kwargs)))


def cmd_synth(args: argparse.Namespace) -> None:
    """Generate the synthetic tiny-object dataset."""
    from hsfpn_yolo.data.synth import SPLITS, generate, size_histogram

    # Options left out are not passed, so the generator's own defaults apply
    kwargs = {k: getattr(args, k) for k in ("train", "val", "imgsz", "seed", "obb") if hasattr(args, k)}
    summary = generate(args.dst, **kwargs)
    for split in SPLITS:  # the box-size distribution in the AI-TOD buckets (sqrt of box area, px)
        hist = size_histogram(summary["path"], split)
        print(f"{split} box sizes: " + ", ".join(f"{k} px: {v}" for k, v in hist.items() if k != "other" or v))


def cmd_tile(args: argparse.Namespace) -> None:
    """Tile a YOLO-format dataset of large frames."""
    from hsfpn_yolo.data.tiles import tile_dataset

    tile_dataset(args.src, args.dst, args.size, args.overlap, args.min_visible, args.empty, skip_bad=args.skip_bad)


def cmd_doctor(args: argparse.Namespace) -> None:
    """Report what a dataset's tiny objects need before training; write the JSON and PNG only once all is computed."""
    from hsfpn_yolo.diagnosis import doctor
    from hsfpn_yolo.diagnosis.report import table, write

    report = doctor(args.data, imgsz=args.imgsz, models=args.models, split=args.split, evidence=args.evidence)
    print(table(report))
    for path in write(report, args.json, args.plot):
        print(f"saved {path}")


def _slicing(args: argparse.Namespace) -> dict:
    """Return the slicing options shared by `predict` and `val` as keyword arguments."""
    keys = ("slice", "overlap", "full_frame", "conf", "device", "imgsz", "postprocess", "match_metric")
    return {k: getattr(args, k) for k in (*keys, "match_threshold", "project", "name", "exist_ok")}


def cmd_predict(args: argparse.Namespace) -> None:
    """Predict large frames slice by slice with SAHI and save the results."""
    from hsfpn_yolo.sliced import predict_sliced

    predict_sliced(args.model, args.source, line_width=args.line_width, labels=args.labels, **_slicing(args))


def cmd_val(args: argparse.Namespace) -> None:
    """Evaluate tiny-object AP on full frames with sliced inference."""
    from hsfpn_yolo.sliced import val_sliced

    kwargs = {"max_det": args.max_det} if hasattr(args, "max_det") else {}  # left out: the function's default
    val_sliced(args.model, args.data, split=args.split, **kwargs, **_slicing(args))


def _names(text: str) -> list[str]:
    """Split a comma-separated list of model names."""
    return [t.strip() for t in text.split(",") if t.strip()]


def _seeds(text: str) -> list[int]:
    """Parse a comma-separated list of training seeds."""
    try:
        seeds = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"seeds must be integers separated by commas, e.g. 0,1,2; got {text!r}")
    if not seeds:
        raise argparse.ArgumentTypeError("give at least one seed, e.g. 0,1,2")
    return seeds


def cmd_bench_speed(args: argparse.Namespace) -> None:
    """Benchmark parameters, FLOPs, latency, training step and memory of the models and blocks."""
    from hsfpn_yolo.bench.speed import run

    run(
        models=args.models,
        scale=args.scale,
        imgsz=args.imgsz,
        batch=args.batch,
        iters=args.iters,
        budget=args.budget,
        device=args.device,
        threads=args.threads,
        blocks=not args.no_blocks,
        memory=not args.no_memory,
        compile=args.compile,
        json_path=args.json,
    )


_BUDGET = (
    "quick",
    "epochs",
    "imgsz",
    "train_images",
    "val_images",
    "batch",
    "nbs",
    "pretrain_epochs",
    "workers",
    "device",
    "jobs",
    "scale",
)


def _budget(args: argparse.Namespace) -> dict:
    """Return the models, sizes and training settings shared by `bench accuracy` and `bench pretrain`."""
    return {"models": args.models or None, **{k: getattr(args, k) for k in _BUDGET}}


def cmd_bench_accuracy(args: argparse.Namespace) -> None:
    """Train every model the same way and compare tiny-object AP."""
    from hsfpn_yolo.bench.accuracy import run

    run(
        **_budget(args),
        seeds=args.seeds,
        data=args.data,
        project=args.project,
        json_path=args.json,
        resume=not args.no_resume,
        reuse=tuple(args.reuse),
        starts=("pretrained",) if args.pretrained else args.starts,
        nwd=args.nwd,
    )


def cmd_bench_compare(args: argparse.Namespace) -> None:
    """Compare `bench accuracy` results files."""
    from hsfpn_yolo.bench.compare import run

    alias = dict(a.split("=", 1) for a in args.alias)
    run(args.files, args.pairs, args.with_, alias, tuple(args.metrics), args.times, args.curves, args.seeds)


def cmd_bench_pretrain(args: argparse.Namespace) -> None:
    """Build the pretrained stock checkpoints that `bench accuracy --pretrained` starts from."""
    from hsfpn_yolo.bench.pretrain import run

    run(**_budget(args))


def _sizes(text: str) -> list[int]:
    """Parse a comma-separated list of image sizes."""
    try:
        sizes = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"sizes must be integers separated by commas, e.g. 640,320; got {text!r}")
    if not sizes or any(s <= 0 or s % 32 for s in sizes):
        raise argparse.ArgumentTypeError(f"sizes must be positive multiples of 32, e.g. 640,320; got {text!r}")
    return sizes


def cmd_bench_deploy(args: argparse.Namespace) -> None:
    """Time exported models in each runtime, batch 1."""
    import json

    from hsfpn_yolo.bench.deploy import against, markdown, run

    if args.report:  # a saved run's tables, nothing measured
        result = json.loads(args.report.read_text(encoding="utf-8"))
        print(markdown(result))
    else:
        result = run(
            models=args.models,
            formats=args.formats,
            sizes=args.imgsz,
            spread=args.spread,
            min_calls=args.min_calls,
            max_calls=args.max_calls,
            budget=args.budget,
            threads=args.threads,
            out=args.out,
            json_path=args.json,
        )
    if args.against:
        print("\n" + against(result, json.loads(args.against.read_text(encoding="utf-8"))))


def cmd_bench_parts(args: argparse.Namespace) -> None:
    """Profile what each part of the HFP and SDP blocks costs in inference, per runtime."""
    from hsfpn_yolo.bench.parts import run

    run(models=args.models, imgsz=args.imgsz, runs=args.runs, runtimes=args.runtimes, out=args.out, json_path=args.json)


def cmd_bench_profile(args: argparse.Namespace) -> None:
    """Profile where each model's training step spends its time."""
    from hsfpn_yolo.bench.common import default_models
    from hsfpn_yolo.bench.profile import run

    run(
        models=args.models or default_models(args.scale),
        imgsz=args.imgsz,
        batch=args.batch,
        steps=args.steps,
        device=args.device,
        threads=args.threads,
        json_path=args.json,
    )


def cmd_bench_plot(args: argparse.Namespace) -> None:
    """Plot the benchmark JSON files."""
    from hsfpn_yolo.bench.plots import plot

    for path in plot(args.speed, args.accuracy, args.out):
        print(path)


def _nwd_options(text: str) -> dict:
    """Parse `assign=false,loss=0.3,constant=12.8` into NWD options (values as YAML reads them)."""
    import yaml

    pairs = [p.split("=", 1) for p in text.split(",") if p]
    if any(len(p) != 2 for p in pairs):
        raise argparse.ArgumentTypeError(
            f"write NWD options as key=value,..., e.g. loss=0.3,constant=12.8; got {text!r}"
        )
    return {k.strip(): yaml.safe_load(v) for k, v in pairs}


def _add_model_args(p: argparse.ArgumentParser) -> None:
    """Add the model selection shared by `bench speed` and `bench accuracy`."""
    p.add_argument(
        "--models", type=_names, default=None, metavar="A,B", help="model names (default: the six yolov8 ones)"
    )
    p.add_argument("--scale", default="n", choices=list("nsmlx"), help="scale of the default models")


def _add_budget_args(p: argparse.ArgumentParser) -> None:
    """Add the benchmark's sizes and training settings, shared by `bench accuracy` and `bench pretrain`."""
    p.add_argument("--quick", action="store_true", help="short screening run: 100/40 images, 6 epochs")
    p.add_argument("--epochs", type=int, default=None, metavar="E", help="epochs per run (default 35; 6 with --quick)")
    p.add_argument("--imgsz", type=int, default=None, metavar="S", help="image size (default 256)")
    p.add_argument("--batch", type=int, default=8, metavar="B", help="batch size")
    p.add_argument(
        "--nbs",
        type=int,
        default=None,
        metavar="N",
        help="nominal batch size: one optimizer step per round(N / batch) batches (default: the batch, a step per batch)",
    )
    p.add_argument(
        "--pretrain-epochs", type=int, default=None, metavar="E", help="epochs of the pretrained starts' pretraining"
    )
    p.add_argument("--device", default="cpu", help="'cpu', '0', ...")
    p.add_argument("--train-images", type=int, default=None, metavar="N", help="synthetic training images (200)")
    p.add_argument("--val-images", type=int, default=None, metavar="M", help="synthetic validation images (50)")
    p.add_argument("--jobs", type=int, default=2, metavar="J", help="runs trained at once, one process each (2)")
    p.add_argument("--workers", type=int, default=2, metavar="W", help="dataloader workers")


def _bench_parsers(commands) -> None:
    """Add the `bench speed|accuracy|plot` subcommands."""
    bench = commands.add_parser("bench", help="benchmark speed, memory and tiny-object accuracy")
    kinds = bench.add_subparsers(dest="kind", required=True, metavar="KIND")

    p = kinds.add_parser(
        "speed",
        help="parameters, GFLOPs, latency, training step and memory; HFP/SDP against reference versions",
        description="Time the six yolov8{s} models (stock, finepath, hsfpn; each also -p2) in one run, plus the HFP "
        "and SDP blocks against straightforward reference versions, and print Markdown tables. Iteration counts "
        "follow a time budget per case unless --iters is given.",
    )
    _add_model_args(p)
    p.add_argument("--imgsz", type=int, default=640, metavar="S", help="input size")
    p.add_argument("--batch", type=int, default=8, metavar="B", help="large batch (latency, training step, blocks)")
    p.add_argument("--iters", type=int, default=None, metavar="N", help="fixed timed iterations per case")
    p.add_argument("--budget", type=float, default=None, metavar="SEC", help="seconds per case (default: auto)")
    p.add_argument("--device", default=None, help="'cpu' or 'cuda' (default: cuda when present, CPU always)")
    p.add_argument("--threads", type=int, default=None, metavar="T", help="torch CPU threads (default: all cores)")
    p.add_argument("--no-blocks", action="store_true", help="skip the block-level comparison")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    p.add_argument("--compile", action="store_true", help="also time torch.compile'd HS-FPN inference")
    p.add_argument("--json", type=Path, default=None, metavar="PATH", help="save the raw numbers here")
    p.set_defaults(func=cmd_bench_speed)

    from hsfpn_yolo.bench.deploy import FORMATS, MODELS, SIZES

    p = kinds.add_parser(
        "deploy",
        help="inference latency of the exported models in each runtime (batch 1), call by call in turns",
        description="Export each model (built from its YAML, gates opened) to each format and size with Ultralytics' "
        "exporter, load it through AutoBackend as YOLO('exported') does, and time all models and formats of a size "
        "call by call in turns until every runner's IQR is within --spread of its median. Prints median ms and the "
        "ratio to the stock counterpart per format; exports are cached in --out.",
    )
    p.add_argument("--models", type=_names, default=list(MODELS), metavar="A,B", help="models (default: %(default)s)")
    p.add_argument(
        "--formats", type=_names, default=list(FORMATS), metavar="F,...", help=f"of {', '.join(FORMATS)} (all)"
    )
    p.add_argument("--imgsz", type=_sizes, default=list(SIZES), metavar="S,...", help="input sizes (640,320)")
    p.add_argument("--spread", type=float, default=0.10, metavar="F", help="IQR / median to reach (0.10)")
    p.add_argument("--min-calls", type=int, default=20, metavar="N", help="timed calls before checking (20)")
    p.add_argument("--max-calls", type=int, default=300, metavar="N", help="timed calls at most (300)")
    p.add_argument("--budget", type=float, default=600.0, metavar="SEC", help="timing seconds per size at most (600)")
    p.add_argument("--threads", type=int, default=None, metavar="T", help="torch CPU threads (default: all cores)")
    p.add_argument("--out", type=Path, default=Path("runs/bench/deploy"), help="checkpoints and exports (cached)")
    p.add_argument("--json", type=Path, default=None, metavar="PATH", help="save the numbers here")
    p.add_argument(
        "--report", type=Path, default=None, metavar="JSON", help="print a saved run's tables, measure nothing"
    )
    p.add_argument(
        "--against", type=Path, default=None, metavar="JSON", help="also each ratio then and now (a saved run)"
    )
    p.set_defaults(func=cmd_bench_deploy)

    from hsfpn_yolo.bench.parts import RUNTIMES

    p = kinds.add_parser(
        "parts",
        help="what each part of HFP and SDP costs in inference, in PyTorch, ONNX Runtime and OpenVINO",
        description="Profile each model (fused, batch 1) with torch.profiler, ONNX Runtime's profiler and OpenVINO's "
        "per-layer counters, attribute every operator by its module and type to a part of the HFP and SDP blocks "
        "(or the rest of the model) and print ms per call. Uses `bench deploy`'s cached exports.",
    )
    p.add_argument(
        "--models", type=_names, default=["yolov8n-finepath", "yolov8n-hsfpn"], metavar="A,B", help="%(default)s"
    )
    p.add_argument("--imgsz", type=int, default=640, metavar="S", help="input size (640)")
    p.add_argument("--runs", type=int, default=20, metavar="N", help="profiled calls per model and runtime (20)")
    p.add_argument("--runtimes", type=_names, default=list(RUNTIMES), metavar="R,...", help="of %(default)s")
    p.add_argument("--out", type=Path, default=Path("runs/bench/deploy"), help="`bench deploy`'s exports (cached)")
    p.add_argument("--json", type=Path, default=None, metavar="PATH", help="save the numbers here")
    p.set_defaults(func=cmd_bench_parts)

    p = kinds.add_parser(
        "accuracy",
        help="train each model with several seeds and compare tiny-object AP (mean, sd, min-max)",
        description="Train every model once per start and training seed with the same data, epochs, image size and optimizer "
        "(default: the synthetic tiny-object set, generated once into Ultralytics' datasets folder) and report AP, "
        "AP50, AP_vt, AP_t, AP_s as mean ± sd (min-max) over the seeds, the difference of each HS-FPN model to its "
        "stock counterpart with its standard error, and the per-seed rows. Runs already in --json with the same "
        "settings are kept. Default: the six n-scale models, from scratch and pretrained, 35 epochs with one optimizer "
        "step per batch (where stock yolov8n has converged); --quick screens.",
    )
    _add_model_args(p)
    p.add_argument("--seeds", type=_seeds, default=[0, 1, 2], metavar="0,1,2", help="training seeds (default 0,1,2)")
    _add_budget_args(p)
    p.add_argument("--data", default=None, metavar="YAML", help="data YAML (default: synthetic set)")
    p.add_argument(
        "--starts",
        type=_names,
        default=None,
        metavar="S,...",
        help="scratch and/or pretrained (the stock counterpart's `bench pretrain` checkpoint); default both "
        "(scratch only for OBB models)",
    )
    p.add_argument("--pretrained", action="store_true", help="the pretrained start only (--starts pretrained)")
    p.add_argument(
        "--nwd",
        type=_nwd_options,
        nargs="?",
        const={},
        default=None,
        metavar="K=V,...",
        help="train with NWD assignment and box loss; options assign, loss, constant (default false, 0.5, auto)",
    )
    p.add_argument("--project", type=Path, default=Path("runs/bench/accuracy"), help="folder for the runs")
    p.add_argument("--json", type=Path, default=Path("runs/bench/accuracy.json"), metavar="PATH", help="results")
    p.add_argument("--no-resume", action="store_true", help="retrain runs already in --json with equal settings")
    p.add_argument("--reuse", type=Path, nargs="*", default=[], metavar="JSON", help="also keep these files' runs")
    p.set_defaults(func=cmd_bench_accuracy)

    p = kinds.add_parser(
        "compare",
        help="compare `bench accuracy` results: each model against stock (starts side by side), pairs, an option",
        description="Read `bench accuracy` results files (a run found in several counts once) and print Markdown: by "
        "default each model's mean ± sd (min–max) and its difference to the stock counterpart ± standard error with "
        "the verdict (gain/loss beyond 2 SE, noise otherwise), one column group per start, and per regime (epochs, "
        "nominal batch, image size, optimizer steps) where the files hold several. --pairs compares given models, "
        "--with the same models trained with an option.",
    )
    p.add_argument("files", type=Path, nargs="+", metavar="JSON", help="`bench accuracy` results files")
    p.add_argument("--pairs", nargs="+", default=None, metavar="A:B", help="model A against model B")
    p.add_argument(
        "--with", dest="with_", type=Path, nargs="+", default=None, metavar="JSON", help="runs with an option"
    )
    p.add_argument("--alias", nargs="+", default=[], metavar="OLD=NEW", help="rename models of the JSON files")
    p.add_argument("--metrics", type=_names, default=["AP", "AP_vt"], metavar="K,...", help="metrics (AP,AP_vt)")
    p.add_argument("--times", action="store_true", help="add the ratio of the mean training time per epoch")
    p.add_argument("--curves", action="store_true", help="per run: best AP, its epoch, the first epoch within 95 %%")
    p.add_argument("--seeds", type=_seeds, default=None, metavar="S,...", help="only the runs of these seeds")
    p.set_defaults(func=cmd_bench_compare)

    p = kinds.add_parser(
        "pretrain",
        help="pretrain the stock checkpoints that `bench accuracy --pretrained` starts from (cached)",
        description="Train each stock counterpart of the benchmark's models (yolov8n, yolov8n-p2 by default) once on "
        "a pretraining set that is not the benchmark (other classes, shapes, colours and 2-64 px sizes, its own seed, "
        "three times the benchmark's training images, the same image size and epochs) and keep the final weights in "
        "Ultralytics' weights folder. Give the same sizes as the `bench accuracy --pretrained` run that will use them; "
        "checkpoints already there are reused. `bench accuracy --pretrained` builds missing ones itself.",
    )
    _add_model_args(p)
    _add_budget_args(p)
    p.set_defaults(func=cmd_bench_pretrain)

    p = kinds.add_parser(
        "profile",
        help="where the training step spends its time: operator families and forward time per layer type",
        description="Profile a few training steps of each model with torch.profiler on a synthetic batch and print "
        "the self time per operator family (convolution, norm, attention, matrix products, pooling, other) and the "
        "forward time per layer type.",
    )
    _add_model_args(p)
    p.add_argument("--imgsz", type=int, default=256, metavar="S", help="input size")
    p.add_argument("--batch", type=int, default=8, metavar="B", help="batch size")
    p.add_argument("--steps", type=int, default=3, metavar="N", help="profiled training steps per model")
    p.add_argument("--device", default="cpu", help="'cpu' or 'cuda'")
    p.add_argument(
        "--threads", type=int, default=1, metavar="T", help="torch CPU threads (Ultralytics trains with 1 here)"
    )
    p.add_argument("--json", type=Path, default=None, metavar="PATH", help="save the numbers here")
    p.set_defaults(func=cmd_bench_profile)

    p = kinds.add_parser(
        "plot",
        help="plot benchmark JSON files as PNGs",
        description="Write AP-by-size bars (from the accuracy JSON) and latency against AP (needs both JSONs) as PNGs.",
    )
    p.add_argument("--speed", type=Path, default=None, metavar="JSON", help="`bench speed --json` output")
    p.add_argument(
        "--accuracy", type=Path, nargs="+", default=None, metavar="JSON", help="`bench accuracy --json` output(s)"
    )
    p.add_argument("--out", type=Path, default=Path("docs"), metavar="DIR", help="folder for the PNGs")
    p.set_defaults(func=cmd_bench_plot)


def _add_slicing_args(p: argparse.ArgumentParser, conf: float, postprocess: str, metric: str) -> None:
    """Add the options shared by `predict` and `val`: slicing, SAHI's merge, model settings and the run folder."""
    from hsfpn_yolo.sliced.model import MATCH_METRICS, POSTPROCESS

    p.add_argument("--slice", type=int, default=640, metavar="S", help="slice side in pixels, a multiple of 32 (640)")
    p.add_argument("--overlap", type=float, default=0.2, metavar="F", help="overlap of neighbouring slices, [0, 1)")
    p.add_argument("--full-frame", action="store_true", help="also predict on the whole frame and merge those boxes")
    p.add_argument("--conf", type=float, default=conf, metavar="C", help=f"confidence threshold ({conf})")
    p.add_argument("--device", default=None, help="'cpu', '0', ... (default: GPU when present)")
    p.add_argument("--imgsz", type=int, default=None, metavar="S", help="inference size per slice (the slice size)")
    p.add_argument("--postprocess", default=postprocess, choices=POSTPROCESS, help=f"SAHI's merge ({postprocess})")
    p.add_argument("--match-metric", default=metric, choices=MATCH_METRICS, help=f"overlap measure ({metric})")
    p.add_argument("--match-threshold", type=float, default=0.5, metavar="T", help="overlap that merges (0.5)")
    p.add_argument(
        "--project",
        type=Path,
        default=None,
        help="parent folder of the run, read as `yolo ... project=` reads it (default: Ultralytics' runs_dir/detect)",
    )
    p.add_argument("--exist-ok", action="store_true", help="reuse the run folder instead of numbering a new one")


def _large_frame_parsers(commands) -> None:
    """Add the `tile`, `predict` and `val` subcommands for frames larger than the training size."""
    from hsfpn_yolo.data.tiles import EMPTY_SHARE, MIN_VISIBLE, OVERLAP, STRIDE, TILE_SIZE

    p = commands.add_parser(
        "tile",
        help="tile a YOLO-format dataset of large frames into overlapping tiles",
        description="Tile every frame of SRC (images/ and labels/ in YOLO format, any sub-folders) into SIZE x SIZE "
        "tiles at DST, placed as SAHI's sliced inference places its slices. Boxes are clipped to each tile and kept "
        "when at least --min-visible of their area is inside; a share --empty of the tiles without boxes is kept. "
        "Tiles are named <frame>_<x0>_<y0>_<x1>_<y1>. DST is written atomically; re-running replaces an earlier "
        "tiling. A data.yaml in SRC is copied with the same splits and names.",
    )
    p.add_argument("src", type=Path, metavar="SRC", help="dataset folder with images/ and labels/")
    p.add_argument("dst", type=Path, metavar="DST", help="output folder (outside SRC)")
    # the defaults live in hsfpn_yolo.data.tiles; the help texts show them through %(default)s
    p.add_argument(
        "--size", type=int, default=TILE_SIZE, metavar="S", help=f"tile side, a multiple of {STRIDE} px (%(default)s)"
    )
    p.add_argument(
        "--overlap", type=float, default=OVERLAP, metavar="F", help="overlap of neighbour tiles, [0, 1) (%(default)s)"
    )
    p.add_argument(
        "--min-visible", type=float, default=MIN_VISIBLE, metavar="F", help="kept share of a box's area (%(default)s)"
    )
    p.add_argument(
        "--empty", type=float, default=EMPTY_SHARE, metavar="F", help="share of tiles without boxes kept (%(default)s)"
    )
    p.add_argument("--skip-bad", action="store_true", help="skip and count bad frames instead of stopping")
    p.set_defaults(func=cmd_tile)

    p = commands.add_parser(
        "predict",
        help="sliced prediction of large frames with SAHI (annotated images, YOLO txt, COCO JSON)",
        description="Predict each frame slice by slice with SAHI and merge the boxes in frame pixels. Saves "
        "<run>/<frame>.jpg with the boxes drawn, <run>/labels/<frame>.txt ('cls xc yc w h conf') and "
        "<run>/predictions.json (COCO results). Any Ultralytics detection checkpoint works.",
    )
    p.add_argument("model", metavar="MODEL", help="checkpoint (.pt, ...) or model YAML")
    p.add_argument("source", metavar="SOURCE", help="image file, folder or glob pattern")
    _add_slicing_args(p, conf=0.25, postprocess="GREEDYNMM", metric="IOS")
    p.add_argument("--name", default="predict-sliced", help="run folder name (predict-sliced)")
    p.add_argument("--labels", action="store_true", help="write class and confidence next to each drawn box")
    p.add_argument(
        "--line-width", type=int, default=None, metavar="PX", help="box line width (default: 1 px per 2000 px of side)"
    )
    p.set_defaults(func=cmd_predict)

    p = commands.add_parser(
        "val",
        help="tiny-object AP on full frames with sliced inference",
        description="Evaluate MODEL on the full frames of DATA's split with SAHI's sliced inference and report AP, "
        "AP50, AP75, AP_vt, AP_t, AP_s, AP_m (AI-TOD sizes, frame pixels) like the `yolo val` line; saved to "
        "<run>/tiny_metrics.json and .csv. Compare with `yolo val` of the same checkpoint for full-frame numbers.",
    )
    p.add_argument("model", metavar="MODEL", help="checkpoint (.pt, ...) or model YAML")
    p.add_argument("data", metavar="DATA", help="data YAML of the full-frame dataset")
    p.add_argument("--split", default="val", help="split to evaluate (val)")
    p.add_argument(
        "--max-det",
        type=int,
        default=argparse.SUPPRESS,
        metavar="N",
        help="detections kept per frame after merging (default 1500, AI-TOD's protocol)",
    )
    _add_slicing_args(p, conf=0.001, postprocess="NMS", metric="IOU")
    p.add_argument("--name", default="val-sliced", help="run folder name (val-sliced)")
    p.set_defaults(func=cmd_val)


def build_parser() -> argparse.ArgumentParser:
    """Return the `hsfpn-yolo` argument parser with all subcommands."""
    parser = argparse.ArgumentParser(
        prog="hsfpn-yolo", description="HS-FPN for Ultralytics YOLO: data tools and benchmarks."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    convert = commands.add_parser(
        "convert",
        help="convert a dataset to Ultralytics YOLO format",
        description="Convert a dataset split to Ultralytics YOLO layout: DST/images/* and DST/labels/*.txt "
        "('cls xc yc w h', normalised). DST is written atomically; re-running replaces an earlier conversion.",
    )
    formats = convert.add_subparsers(dest="format", required=True, metavar="FORMAT")

    p = formats.add_parser(
        "visdrone",
        help="VisDrone2019-DET split (images/ + annotations/)",
        description="Convert a VisDrone2019-DET split. Ignored regions (category 0 or score 0) and 'others' (11) "
        "are dropped, boxes are clipped to the image, classes 1..10 become 0..9.",
    )
    p.add_argument("src", type=Path, metavar="SRC", help="split folder holding images/ and annotations/")
    p.add_argument("dst", type=Path, metavar="DST", help="output folder")
    p.add_argument("--skip-bad", action="store_true", help="skip and count bad images instead of stopping")
    p.set_defaults(func=cmd_convert_visdrone)

    p = formats.add_parser(
        "aitod",
        help="AI-TOD split (COCO-style JSON + image folder)",
        description="Convert an AI-TOD split. Classes are matched by name, crowd/ignore annotations are dropped, "
        "images without annotations are kept as background.",
    )
    p.add_argument("annotations", type=Path, metavar="ANNOTATIONS.json", help="COCO-style annotation file")
    p.add_argument("images", type=Path, metavar="IMAGES_DIR", help="folder the JSON's file_name entries are in")
    p.add_argument("dst", type=Path, metavar="DST", help="output folder")
    p.add_argument("--skip-bad", action="store_true", help="skip and count bad images/annotations")
    p.set_defaults(func=cmd_convert_aitod)

    p = commands.add_parser(
        "synth",
        help="generate a synthetic tiny-object dataset",
        description="Render a synthetic tiny-object detection dataset in Ultralytics layout at DST. "
        "Options left out take the generator's defaults.",
    )
    p.add_argument("dst", type=Path, metavar="DST", help="output folder")
    p.add_argument("--train", type=int, default=argparse.SUPPRESS, metavar="N", help="number of training images")
    p.add_argument("--val", type=int, default=argparse.SUPPRESS, metavar="M", help="number of validation images")
    p.add_argument(
        "--imgsz",
        type=int,
        default=argparse.SUPPRESS,
        metavar="S",
        help="frame side in pixels; object sizes in pixels "
        "do not change with it, so e.g. --imgsz 1536 gives large frames for tiling and sliced inference",
    )
    p.add_argument("--seed", type=int, default=argparse.SUPPRESS, metavar="K", help="random seed")
    p.add_argument("--obb", action="store_true", default=argparse.SUPPRESS, help="oriented-box labels (yolo obb train)")
    p.set_defaults(func=cmd_synth)

    p = commands.add_parser(
        "demo",
        help="first run: train an HS-FPN YOLOv8n on the built-in synthetic set and draw its detections",
        description="Train on the built-in synthetic tiny-object set with the accuracy benchmark's settings (one "
        "seed), print the tiny-object AP, save a prediction image and say what to run next. Nothing is downloaded.",
    )
    p.add_argument("--model", default=argparse.SUPPRESS, help="model name or YAML path (default: yolov8n-hsfpn)")
    p.add_argument("--epochs", type=int, default=argparse.SUPPRESS, help="training epochs (default 10)")
    p.add_argument("--device", default=argparse.SUPPRESS, help="'cpu' (default), '0', ...")
    p.add_argument("--project", default=argparse.SUPPRESS, help="folder for the run (default: runs/demo)")
    p.set_defaults(func=cmd_demo)

    p = commands.add_parser(
        "doctor",
        help="before training: what a dataset's tiny objects need (sizes, anchor candidates, tiles, NWD, model)",
        description="Read one split's labels and image headers (no training, no weights, no pixels) and report at "
        "the training size: object sizes in AI-TOD buckets; per model, the boxes without a candidate anchor point "
        "under the installed Ultralytics assigner, with and without its small-target enlargement; what tiling frames "
        "larger than the training size would do; NWD's `constant: auto`; and a recommendation (image size or tiles, "
        "model, NWD) grounded in the benchmark's measured table. Files are written only when all of it succeeded.",
    )
    p.add_argument("data", metavar="DATA", help="dataset YAML, by path or bare name (e.g. tiny-synth.yaml)")
    p.add_argument("--imgsz", type=int, default=640, metavar="N", help="training image size (640)")
    p.add_argument("--models", type=_names, default=None, metavar="A,B", help="models (default yolov8n,yolov8n-p2)")
    p.add_argument("--split", default="train", choices=("train", "val", "test"), help="split whose labels are read")
    p.add_argument("--json", type=Path, default=None, metavar="F", help="write every number as JSON to F")
    p.add_argument("--plot", type=Path, default=None, metavar="F", help="write the size and candidate plots (PNG) to F")
    p.add_argument("--evidence", type=Path, default=None, metavar="F", help="comparisons to advise from (shipped)")
    p.set_defaults(func=cmd_doctor)

    _large_frame_parsers(commands)
    _bench_parsers(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line.

    Args:
        argv: Arguments without the program name; None reads sys.argv.

    Returns:
        (int): Exit code: 0 on success, 2 on usage errors or bad input (reported as one `error: ...` line).
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help and usage errors
        return e.code if isinstance(e.code, int) else ERROR_EXIT
    try:
        args.func(args)
    except (ValueError, OSError) as e:  # bad input (ConversionError is a ValueError) or unusable paths
        print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
        return ERROR_EXIT
    return 0


if __name__ == "__main__":
    sys.exit(main())
