"""`modem-ros`: info, bench and train from plain Python (no ROS needed)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from modem_ros.config import ConfigError, ModemConfig, field_docs, load_config, parse_overrides
from modem_ros.runtime import keep_freed_memory


def _config(args: argparse.Namespace) -> ModemConfig:
    overrides = parse_overrides(args.overrides)
    if getattr(args, "img_size", None):
        overrides["img_size"] = str(args.img_size)
    if getattr(args, "device", None):
        overrides["device"] = args.device
    return load_config(args.task, overrides, preset=args.preset)


def cmd_info(args: argparse.Namespace) -> int:
    from modem_ros.agent.networks import WorldModel, conv_specs, parameter_counts

    cfg = _config(args)
    counts = parameter_counts(WorldModel(cfg))
    docs = field_docs()
    out = {"config": cfg.to_dict(), "parameters": counts,
           "encoder": {"convs": [{"kernel": k, "stride": s} for k, s in conv_specs(cfg.img_size)],
                       "channels": cfg.num_channels, "augmentation_pad": cfg.pad}}
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    print(f"task {cfg.task} (suite {cfg.suite})")
    for key, value in cfg.to_dict().items():
        print(f"  {key:<24} {value!s:<28} {docs[key]}")
    print("parameters")
    for name, n in counts.items():
        print(f"  {name:<24} {n:>12,}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from modem_ros.agent.modem import resolve_device
    from modem_ros.bench import format_budget_table, format_table, run_bench, run_budget_sweep, write_json

    if args.what == "budgets":
        if not args.checkpoint:
            raise ConfigError("bench budgets needs --checkpoint PATH (a trained agent)")
        budgets = [tuple(int(x) for x in b.split("x")) for b in args.budgets.split(",")]
        result = run_budget_sweep(Path(args.checkpoint), budgets, args.episodes,
                                  resolve_device(args.device or "auto"))
        out = Path(args.out or "bench_budgets.json")
        write_json(result, out)
        print(json.dumps(result, indent=2) if args.json else f"{format_budget_table(result)}\n(written to {out})")
        return 0
    cfg = _config(args)
    result = run_bench(args.what, cfg, resolve_device(cfg.device), args.repeats, args.warmup)
    out = Path(args.out or f"bench_{args.what}_{cfg.task}_{cfg.img_size}px.json")
    write_json(result, out)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(format_table(result))
        print(f"(written to {out})")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from modem_ros.run import train

    cfg = _config(args)
    evaluations = train(cfg, Path(args.run_dir) if args.run_dir else None)
    final = evaluations[-1] if evaluations else {}
    print(f"done: {json.dumps(final)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="modem-ros", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--task", default="toy-reach", help="task name (see config/suites/*.yaml)")
        p.add_argument("--preset", default=None, help="a preset under config/presets/ or a YAML file")
        p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. img_size=84")

    info = sub.add_parser("info", help="resolved config and parameter counts (no simulator needed)")
    common(info)
    info.add_argument("--img-size", type=int, default=None)
    info.add_argument("--json", action="store_true", help="print JSON")
    info.set_defaults(func=cmd_info)

    bench = sub.add_parser("bench", help="latency, FLOPs and matmul ratio of planning or an update")
    bench.add_argument("what", choices=["plan", "update", "budgets"],
                       help="plan / update: latency and FLOPs; budgets: return vs planning budget of a checkpoint")
    common(bench)
    bench.add_argument("--img-size", type=int, default=None)
    bench.add_argument("--device", default=None, help="cpu, cuda or auto")
    bench.add_argument("--repeats", type=int, default=20)
    bench.add_argument("--warmup", type=int, default=3)
    bench.add_argument("--out", default=None, help="JSON output path")
    bench.add_argument("--json", action="store_true", help="print JSON instead of the table")
    bench.add_argument("--checkpoint", default=None, help="budgets: checkpoint to evaluate")
    bench.add_argument("--budgets", default="512x4,256x4,128x4,64x4,512x2,128x2",
                       help="budgets: comma-separated SAMPLESxITERATIONS")
    bench.add_argument("--episodes", type=int, default=20, help="budgets: eval episodes per budget")
    bench.set_defaults(func=cmd_bench)

    train = sub.add_parser("train", help="three-phase MoDem training in plain Python")
    common(train)
    train.add_argument("--run-dir", default=None, help="where metrics and checkpoints go")
    train.add_argument("--device", default=None, help="cpu, cuda or auto")
    train.set_defaults(func=cmd_train)
    return parser


def main(argv: list[str] | None = None) -> int:
    keep_freed_memory()
    parser = build_parser()
    # key=value overrides may sit between options, which argparse's '*' positional cannot collect.
    args, extra = parser.parse_known_args(argv)
    unknown = [a for a in extra if "=" not in a or a.startswith("-")]
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    args.overrides = list(getattr(args, "overrides", [])) + extra
    try:
        return args.func(args)
    except ConfigError as exc:
        print(f"modem-ros: config error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
