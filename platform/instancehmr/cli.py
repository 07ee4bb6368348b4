"""``instancehmr <command>``: a thin shell over the library; each command calls one function."""

from __future__ import annotations

import argparse
import re
import shlex
import sys
from pathlib import Path

#: A ``key=value`` config override.
OVERRIDE = re.compile(r"[A-Za-z_][\w.]*=.*")


def split_overrides(items: list[str]) -> tuple[list[str], list[str]]:
    """(the other items, the ``key=value`` overrides) of a positional list; an existing path
    that happens to look like an override stays an item."""
    overrides = [i for i in items if OVERRIDE.fullmatch(i) and not Path(i).exists()]
    return [i for i in items if i not in overrides], overrides


# Each command imports its library function inside its handler: `instancehmr --help` and the
# light commands never load torch, Ray or MLflow.


def _config_show(args: argparse.Namespace) -> None:
    from instancehmr.config import load_config, to_yaml

    print(to_yaml(load_config(args.experiment, args.overrides)), end="")


def _body_synth(args: argparse.Namespace) -> None:
    from instancehmr.body.synthetic import synthetic_body_dir, write_synthetic_body

    path = write_synthetic_body(Path(args.out) if args.out else synthetic_body_dir())
    print(f"wrote synthetic SMPL-format body: {path}")


def _data_prepare(args: argparse.Namespace) -> None:
    from instancehmr.data.prepare import prepare

    for m in prepare(
        args.cards, args.out, args.rows_per_shard, args.max_error_rate, args.force, args.splits
    ):
        print(
            f"{m['corpus']}: {m['images']} images, {m['persons']} persons, {m['failed']} failed, "
            f"{m['shards_converted']} shard(s) converted in {m['seconds']} s -> {Path(args.out) / m['corpus']}"
        )
        if m["keep_every"] > 1:
            print(
                f"  ({m['corpus']}: keep_every {m['keep_every']}: one frame in {m['keep_every']} kept)"
            )


def _data_inspect(args: argparse.Namespace) -> None:
    from instancehmr.data.inspection import contact_sheet, export_images, summary

    print(summary(args.dir))
    if args.sheet:
        print(f"contact sheet: {contact_sheet(args.dir, args.sheet, args.count, args.split)}")
    if args.images:
        print(f"images: {export_images(args.dir, args.images, args.count, args.split)}")


def _train(args: argparse.Namespace) -> None:
    from instancehmr.config import load_config
    from instancehmr.track.runs import ui_hint, ui_link
    from instancehmr.train.launch import train

    result = train(load_config(args.experiment, args.overrides), args.resume_with_changes)
    metrics = ", ".join(f"{k}={v:.4g}" for k, v in result.metrics.items() if k.startswith("val/"))
    print(
        f"run {result.run_name} ({result.run_id}) finished in {result.seconds / 60:.1f} min: {metrics}\n"
        f"registered model version {result.model_version}; best checkpoint {result.checkpoint_path}\n"
        f"MLflow: {ui_link(result.tracking_uri, result.experiment_id, result.run_id)}"
        f"{ui_hint(result.tracking_uri)}"
    )


def _eval(args: argparse.Namespace) -> None:
    from instancehmr.eval.run import evaluate

    benchmarks, overrides = split_overrides(args.benchmarks)
    if not benchmarks:
        raise ValueError("name at least one benchmark (e.g. synthetic)")
    result = evaluate(
        args.model, benchmarks, args.protocol, args.out, overrides, args.gendered_models
    )
    print(result.table)
    print(f"written to {result.out_dir}/table.md and table.csv")


def _predict(args: argparse.Namespace) -> int:
    from instancehmr.infer.run import PredictOptions, predict

    specs, overrides = split_overrides(args.inputs)
    options = PredictOptions(
        args.mesh, args.overlay, args.side_by_side, args.vertices, args.every, args.max_frames,
        args.batch_size, args.fov, args.ray, args.workers,
    )  # fmt: skip
    summary = predict(args.model, specs, args.out, options, overrides)
    for problem in summary.failed:
        print(f"instancehmr: skipped {problem}", file=sys.stderr)
    print(summary.line())
    return 1 if summary.failed else 0  # some inputs failed, the others were predicted


def _export(args: argparse.Namespace) -> None:
    from instancehmr.infer.export import TOLERANCE, export

    exported = export(args.model, args.format, args.out, args.overrides)
    print(f"wrote {exported.path} (+ export.json); its maps differ from PyTorch's by at most "
          f"{exported.max_abs_diff:.2g} (tolerance {TOLERANCE:g})")  # fmt: skip


def _print_sweep(result, args: argparse.Namespace) -> int:
    from instancehmr.track.runs import ui_hint, ui_link

    print(f"\nleaderboard ({result.finished} finished, {result.failed} failed, "
          f"{result.unfinished} unfinished) in {result.seconds / 60:.1f} min:\n{result.leaderboard}")  # fmt: skip
    if result.ablation:
        print(f"\nablation (mean ± std over each row's trials):\n{result.ablation}")
    uri, experiment = result.tracking_uri, result.experiment_id
    print(f"\nsweep {result.name}: MLflow parent run {result.parent_run_id}\n"
          f"  runs:    {ui_link(uri, experiment, sweep=result.name)}{ui_hint(uri)}\n"
          f"  parent:  {ui_link(uri, experiment, result.parent_run_id)}\n"
          f"next:\n  instancehmr promote {result.name}        # its best trial becomes champion\n"
          f"  instancehmr eval models:/instancehmr@champion {result.benchmark or 'synthetic'}")  # fmt: skip
    if result.checkpoint_bytes and not result.unfinished:
        print(f"the trials' training checkpoints take {result.checkpoint_bytes / 2**20:.0f} MB in "
              f"{result.checkpoints}; MLflow holds every trial's model, so they only serve "
              f"--resume: free them with `rm -rf {shlex.quote(result.checkpoints)}`")  # fmt: skip
    if result.unfinished:
        again = shlex.join(["instancehmr", *(a for a in args.argv if a != "--resume"), "--resume"])
        print(f"interrupted: resume with `{again}`", file=sys.stderr)
        return 130
    return 0


def _sweep(args: argparse.Namespace) -> int:
    from instancehmr.sweep.run import run_sweep
    from instancehmr.sweep.spec import load_sweep

    spec = load_sweep(args.sweep_file)
    return _print_sweep(run_sweep(spec, args.resume, args.retry_failed), args)


def _ablate(args: argparse.Namespace) -> int:
    from instancehmr.sweep.run import ablation_spec, run_sweep

    # `--rows a.yaml b.yaml key=value`: overrides may follow the row files too.
    rows, trailing = split_overrides(args.rows)
    overrides = [*args.overrides, *trailing]
    spec = ablation_spec(
        rows, args.experiment, args.seeds, overrides, args.name, args.metric, args.mode,
        args.max_concurrent_trials, None if args.benchmark == "none" else args.benchmark,
    )  # fmt: skip
    return _print_sweep(run_sweep(spec, args.resume, args.retry_failed), args)


def _promote(args: argparse.Namespace) -> None:
    from instancehmr.track.registry import promote
    from instancehmr.track.runs import use_tracking_uri

    use_tracking_uri()
    promotion = promote(
        args.experiment, args.metric, args.mode, args.force, args.name, args.include_sweeps
    )
    print(promotion.summary())


def _bench_model(args: argparse.Namespace) -> None:
    from instancehmr.bench.model import bench_model
    from instancehmr.config import load_config

    cfg = load_config(args.experiment, args.overrides)
    print(bench_model(cfg, batch_size=args.batch_size, repeats=args.repeats).table())


def _bench_data(args: argparse.Namespace) -> None:
    from instancehmr.bench.data import bench_data
    from instancehmr.config import load_config

    cfg = load_config(args.experiment, args.overrides)
    print(bench_data(cfg, images=args.images).table())


def _bench_predict(args: argparse.Namespace) -> None:
    from instancehmr.bench.predict import bench_predict
    from instancehmr.config import load_config

    cfg = load_config(args.experiment, args.overrides)
    print(bench_predict(cfg, args.images, args.batch_size, args.people).table())


def _bench_train(args: argparse.Namespace) -> None:
    from instancehmr.bench.train import bench_train
    from instancehmr.config import load_config

    cfg = load_config(args.experiment, args.overrides)
    print(bench_train(cfg, steps=args.steps).table())


def _experiment_parser(group, name: str, help: str, default: str = "quickstart"):
    """A benchmark sub-command taking an optional experiment and ``key=value`` overrides."""
    parser = group.add_parser(name, help=help)
    parser.add_argument(
        "experiment", nargs="?", default=default, help=f"experiment (default: {default})"
    )
    parser.add_argument("overrides", nargs="*", help="key=value overrides")
    return parser


def _resume_arguments(parser) -> None:
    parser.add_argument(
        "--resume", action="store_true", help="continue an interrupted sweep (finished trials stay)"
    )
    parser.add_argument(
        "--retry-failed", action="store_true", help="with --resume: run failed trials again"
    )


def build_parser() -> argparse.ArgumentParser:
    from instancehmr.eval.benchmarks import BENCHMARKS, PROTOCOLS

    parser = argparse.ArgumentParser(prog="instancehmr", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    config = commands.add_parser("config", help="experiment configs").add_subparsers(
        dest="action", required=True
    )
    show = config.add_parser("show", help="print the resolved config of an experiment")
    show.add_argument("experiment", help="experiments/NAME.yaml or a bare NAME")
    show.add_argument(
        "overrides", nargs="*", help="key=value overrides, e.g. model.embedding_dim=128"
    )
    show.set_defaults(func=_config_show)

    body = commands.add_parser("body", help="body model files").add_subparsers(
        dest="action", required=True
    )
    synth = body.add_parser("synth", help="write the embedded synthetic SMPL-format body")
    synth.add_argument("--out", help="output folder (default: the cache, $INSTANCEHMR_CACHE/body)")
    synth.set_defaults(func=_body_synth)

    train = commands.add_parser(
        "train", help="train an experiment with Ray Train, tracked in MLflow"
    )
    train.add_argument("experiment", help="experiments/NAME.yaml or a bare NAME")
    train.add_argument("overrides", nargs="*", help="key=value overrides, e.g. train.epochs=2")
    train.add_argument(
        "--resume-with-changes",
        action="store_true",
        help="resume the run named tracking.run_name although the config differs from its own: "
        "the changes are applied (learning rate included) and recorded in the run",
    )
    train.set_defaults(func=_train, trailing_overrides="overrides")

    ev = commands.add_parser(
        "eval", help="evaluate a model on benchmarks under both protocols (paper tables)"
    )
    ev.add_argument("model", help="checkpoint path, MLflow run id or models:/NAME@ALIAS")
    ev.add_argument(
        "benchmarks",
        nargs="+",
        help=f"benchmarks ({', '.join(BENCHMARKS)}), then key=value config overrides",
    )
    ev.add_argument("--protocol", nargs="+", default=list(PROTOCOLS), choices=PROTOCOLS)
    ev.add_argument("--out", default="eval_results", help="where table.md / table.csv go")
    ev.add_argument(
        "--gendered-models",
        default=None,
        help="folder with SMPL_MALE / SMPL_FEMALE (.pkl or .npz): gendered GT meshes for MPVPE",
    )
    ev.set_defaults(func=_eval, trailing_overrides="benchmarks")

    pd = commands.add_parser(
        "predict",
        help="every person in images, folders, glob patterns and videos: JSON lines, arrays, "
        "meshes, overlays",
    )
    pd.add_argument("model", help="checkpoint path, MLflow run id or models:/NAME@ALIAS")
    pd.add_argument(
        "inputs",
        nargs="+",
        help="image files, folders (recursively), glob patterns, video files; then key=value "
        "config overrides (e.g. decode.center_threshold=0.3)",
    )
    pd.add_argument("--out", default="predictions", help="folder for the results")
    pd.add_argument("--mesh", default=None, help="one mesh file per image: obj, ply or glb")
    pd.add_argument("--overlay", action="store_true", help="draw the meshes over each image")
    pd.add_argument(
        "--side-by-side", action="store_true", help="overlays beside the original image"
    )
    pd.add_argument("--vertices", action="store_true", help="vertices in the JSON lines and npz")
    pd.add_argument("--every", type=int, default=1, help="video: every N-th frame")
    pd.add_argument("--max-frames", type=int, default=None, help="video: at most this many")
    pd.add_argument("--batch-size", type=int, default=16, help="images per network batch")
    pd.add_argument(
        "--fov", type=float, default=60.0, help="field of view (degrees) the translations assume"
    )
    pd.add_argument(
        "--ray",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="images through Ray Data and a pool of model actors, Parquet shards out "
        "(default: when RAY_ADDRESS is set)",
    )
    pd.add_argument("--workers", type=int, default=None, help="Ray: model actors")
    pd.set_defaults(func=_predict, trailing_overrides="inputs")

    ex = commands.add_parser(
        "export", help="the network as ONNX or TorchScript for deployment (decoding in Python)"
    )
    ex.add_argument("model", help="checkpoint path, MLflow run id or models:/NAME@ALIAS")
    ex.add_argument("overrides", nargs="*", help="key=value config overrides")
    ex.add_argument("--format", required=True, help="onnx or torchscript")
    ex.add_argument("--out", default="export", help="folder for the model and export.json")
    ex.set_defaults(func=_export, trailing_overrides="overrides")

    sw = commands.add_parser(
        "sweep", help="run a sweep file: Ray Tune trials of Ray Train runs, one MLflow parent run"
    )
    sw.add_argument("sweep_file", help="e.g. experiments/sweeps/quickstart_lr.yaml")
    _resume_arguments(sw)
    sw.set_defaults(func=_sweep)

    ab = commands.add_parser(
        "ablate", help="run ablation rows x seeds as one sweep and print the table (mean ± std)"
    )
    ab.add_argument(
        "overrides", nargs="*", help="key=value overrides for every row, e.g. train.epochs=2"
    )
    ab.add_argument(
        "--rows",
        nargs="+",
        default=["experiments/ablations"],
        help="ablation files or folders (default: experiments/ablations)",
    )
    ab.add_argument("--experiment", default="base", help="base experiment (default: base)")
    ab.add_argument("--seeds", type=int, default=3, help="seeds per row (default: 3)")
    ab.add_argument("--name", help="sweep name (default: ablate-<experiment>)")
    ab.add_argument(
        "--max-concurrent-trials", type=int, default=1, help="Train runs at once (default: 1)"
    )
    ab.add_argument(
        "--benchmark",
        default="synthetic",
        help="mesh benchmark every finished trial is evaluated on for the seeded comparison "
        "(default: synthetic, its occlusion levels; none: skip)",
    )
    ab.add_argument("--metric", default="val/mpjpe")
    ab.add_argument("--mode", default="min", choices=["min", "max"])
    _resume_arguments(ab)
    ab.set_defaults(func=_ablate, trailing_overrides="overrides")

    pr = commands.add_parser(
        "promote", help="make the best run of an experiment or sweep the registered champion"
    )
    pr.add_argument(
        "experiment", help="MLflow experiment (e.g. quickstart) or sweep name (its trials)"
    )
    pr.add_argument("--metric", default="val/mpjpe", help="metric that ranks runs")
    pr.add_argument("--mode", default="min", choices=["min", "max"])
    pr.add_argument("--force", action="store_true", help="promote even if not better")
    pr.add_argument("--name", default="instancehmr", help="registered model name")
    pr.add_argument(
        "--include-sweeps",
        action="store_true",
        help="an experiment's sweep trials compete too (by default only its own runs do)",
    )
    pr.set_defaults(func=_promote)

    data = commands.add_parser("data", help="corpora and shards").add_subparsers(
        dest="action", required=True
    )
    prep = data.add_parser("prepare", help="convert corpus cards into Parquet shards + manifest")
    prep.add_argument("cards", nargs="+", help="corpus cards, e.g. datasets/synthetic.yaml")
    prep.add_argument("--out", default="data/shards", help="shard root (default: data/shards)")
    prep.add_argument("--rows-per-shard", type=int, default=256)
    prep.add_argument(
        "--max-error-rate", type=float, default=0.01, help="fail when more samples than this fail"
    )
    prep.add_argument("--force", action="store_true", help="convert again even if up to date")
    prep.add_argument(
        "--split",
        action="append",
        dest="splits",
        metavar="NAME",
        help="prepare only this split of each card (repeatable; default: every split); the "
        "manifest keeps the splits prepared before",
    )
    prep.set_defaults(func=_data_prepare)
    insp = data.add_parser("inspect", help="manifest statistics and a contact sheet")
    insp.add_argument(
        "dir", nargs="?", default="data/shards", help="a corpus folder or the shard root"
    )
    insp.add_argument("--sheet", help="write a contact sheet PNG of random samples here")
    insp.add_argument("--count", type=int, default=16, help="samples on the sheet (or written)")
    insp.add_argument("--images", help="write the images of random samples into this folder")
    insp.add_argument("--split", help="samples of this split only (e.g. test)")
    insp.set_defaults(func=_data_inspect)

    bench = commands.add_parser("bench", help="speed benchmarks").add_subparsers(
        dest="action", required=True
    )
    model = _experiment_parser(
        bench, "model", "forward time and size of an experiment's network", "base"
    )
    model.add_argument("--batch-size", type=int, default=1)
    model.add_argument("--repeats", type=int, default=5)
    model.set_defaults(func=_bench_model)
    data_bench = _experiment_parser(
        bench, "data", "images/s and memory of the data pipeline vs a plain loop"
    )
    data_bench.add_argument("--images", type=int, default=256)
    data_bench.set_defaults(func=_bench_data)
    predict_bench = _experiment_parser(
        bench, "predict", "images/s of the whole predict path vs the network alone"
    )
    predict_bench.add_argument("--images", type=int, default=64)
    predict_bench.add_argument("--batch-size", type=int, default=16)
    predict_bench.add_argument("--people", type=int, default=4, help="people decoded per image")
    predict_bench.set_defaults(func=_bench_predict)
    train_bench = _experiment_parser(
        bench, "train", "step time through Ray Train vs a plain PyTorch loop"
    )
    train_bench.add_argument(
        "--steps", type=int, default=10, help="timed steps after 3 warm-up steps"
    )
    train_bench.set_defaults(func=_bench_train)
    return parser


def parse(argv: list[str]) -> argparse.Namespace:
    """The command line, with ``key=value`` overrides accepted after options too: a command
    whose positional list takes them names it in ``trailing_overrides``."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    trailing = getattr(args, "trailing_overrides", None)
    if extra:
        if trailing is None or not all(OVERRIDE.fullmatch(item) for item in extra):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        getattr(args, trailing).extend(extra)
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse(argv)
    from instancehmr.runtime import quiet_console

    quiet_console()
    args.argv = argv  # what resumes an interrupted sweep
    from instancehmr.track.runs import RunFailed

    try:
        return args.func(args) or 0
    except (ValueError, FileNotFoundError, KeyError) as err:
        print(f"instancehmr: error: {err}", file=sys.stderr)
        return 2
    except RunFailed as err:
        print(f"instancehmr: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
