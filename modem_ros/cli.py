"""`modem-ros`: info, bench and train from plain Python (no ROS needed)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from modem_ros import topics
from modem_ros.call import SERVICES
from modem_ros.config import ConfigError, ModemConfig, field_docs, load_config, parse_overrides
from modem_ros.graph import LAUNCHES
from modem_ros.runtime import interrupt_on_sigterm, keep_freed_memory

# Optional dependencies and the install extra that brings each (setup.py extras_require).
EXTRA_OF_MODULE = {"pandas": "lerobot", "pyarrow": "lerobot", "mujoco": "sim", "dm_control": "sim",
                   "metaworld": "sim", "gymnasium_robotics": "sim", "imageio": "sim", "cv2": "sim",
                   "rclpy": "ros", "pyrealsense2": "hw", "franky": "hw"}


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
    from modem_ros import bench
    from modem_ros.agent.modem import resolve_device

    if args.what == "learn":
        return cmd_bench_learn(args)
    if args.what == "budgets":
        if not args.checkpoint:
            raise ConfigError("bench budgets needs --checkpoint PATH (a trained agent)")
        budgets = [tuple(int(x) for x in b.split("x")) for b in args.budgets.split(",")]
        result = bench.run_budget_sweep(Path(args.checkpoint), budgets, args.episodes,
                                        resolve_device(args.device or "auto"), parse_overrides(args.overrides))
        default_out, table = "bench_budgets.json", bench.format_budget_table(result)
    else:
        cfg = _config(args)
        if args.what == "env":
            result = bench.run_env_bench(cfg, args.repeats)
            table = bench.format_env_line(result)
        elif args.what == "graph":
            from modem_ros.bench_graph import format_graph_table, run_graph_bench

            result = run_graph_bench(cfg, args.episodes)
            table = format_graph_table(result)
        elif args.what == "weights":
            from modem_ros.bench_weights import format_weights_line, run_weights_bench

            result = run_weights_bench(cfg, args.repeats)
            table = format_weights_line(result)
        elif args.what == "actors":
            from modem_ros.bench_actors import format_actors_table, run_actors_bench

            counts = [int(n) for n in args.actors.split(",")]
            workdir = Path(args.runs_root) / f"actors-{time.strftime('%Y%m%d-%H%M%S')}"
            result = run_actors_bench(cfg, counts, args.steps or cfg.train_steps, workdir, args.planner_threads)
            table = format_actors_table(result)
        else:
            result = bench.run_bench(args.what, cfg, resolve_device(cfg.device), args.repeats, args.warmup)
            table = bench.format_table(result)
        default_out = f"bench_{args.what}_{cfg.task}_{cfg.img_size}px.json"
    out = Path(args.out or default_out)
    bench.write_json(result, out)
    print(json.dumps(result, indent=2) if args.json else f"{table}\n(written to {out})")
    return 0


def cmd_bench_learn(args: argparse.Namespace) -> int:
    from modem_ros.bench_learn import (
        METHODS,
        merge_results,
        plot_result,
        run_learning_bench,
        summary_table,
        write_json_atomic,
    )

    if args.merge:
        if not args.out:
            raise ConfigError("bench learn --merge: name the merged file with --out")
        parts = []
        for name in args.merge:
            try:
                parts.append(json.loads(Path(name).read_text()))
            except (OSError, json.JSONDecodeError) as err:
                raise ConfigError(f"bench learn --merge: {name}: {err}") from err
        try:
            result = merge_results(parts)
        except ValueError as err:
            raise ConfigError(str(err)) from err
        out = Path(args.out)
        write_json_atomic(result, out)
        figures = plot_result(result, out)
        print(summary_table(result))
        print(f"(merged {len(parts)} files into {out} and {' '.join(str(f) for f in figures)})")
        return 0

    methods = args.methods.split(",")
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ConfigError(f"bench learn: unknown method(s) {unknown}; known: {', '.join(METHODS)}")
    overrides = parse_overrides(args.overrides)
    for method in methods:  # refuse a bad task, preset or override before hours of training
        load_config(args.task, {**overrides, **METHODS[method]}, preset=args.preset)
    seeds = args.seed or list(range(1, args.seeds + 1))
    out = Path(args.out or f"benchmarks/learning/{args.task}_{args.preset or 'reference'}.json")
    result = run_learning_bench(args.task, args.preset, seeds, methods, overrides, out, Path(args.runs_root),
                                collect_only=args.collect)
    print(summary_table(result))
    print(f"(written to {out} and {out.with_suffix('.png')})")
    return 0


def _classifier_episodes(cfg: ModemConfig, directories: str) -> list:
    """Every readable episode of the comma-separated directories (unreadable ones skipped, said so)."""
    from modem_ros.data.demos import DemoError, episode_dirs, read_episode

    episodes = []
    for directory in directories.split(","):
        paths = episode_dirs(directory) if Path(directory).is_dir() else []
        if not paths:
            raise ConfigError(f"classifier: {directory} holds no episode bags")
        for path in paths:
            try:
                bag = read_episode(path, cfg.frame_stack)
            except DemoError as err:
                print(f"classifier: skipping {path}: {err}")
                continue
            if bag.episode.rgb[0].shape[-1] != cfg.img_size:
                raise ConfigError(f"classifier: {path} has {bag.episode.rgb[0].shape[-1]} px frames, the "
                                  f"{cfg.task} config {cfg.img_size} px (pass img_size=... or --preset)")
            episodes.append(bag.episode)
    return episodes


def cmd_classifier(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from modem_ros.success_classifier import (
        ClassifierError,
        SuccessDetector,
        check_classifier,
        save_classifier,
        train_classifier,
    )

    cfg = _config(args)
    if (args.check is None) == (args.out is None):
        raise ConfigError("classifier: give --out FILE to train one, or --check FILE to judge a saved one")
    episodes = _classifier_episodes(cfg, args.episodes)
    try:
        if args.check is not None:
            report = check_classifier(SuccessDetector(args.check, img_size=cfg.img_size, task=cfg.task), episodes)
            print(json.dumps(asdict(report), indent=2))
            return 0
        net, report = train_classifier(episodes, steps=args.steps, target_fpr=args.target_fpr, seed=cfg.seed)
    except ClassifierError as err:
        raise ConfigError(f"classifier: {err}") from err
    out = save_classifier(net, report, cfg.img_size, cfg.task, args.out)
    print(json.dumps(asdict(report), indent=2))
    if report.heldout_tpr < 0.5:  # a reward that misses most successes teaches little: say so before it is used
        print(f"classifier: warning: at the threshold for {report.target_fpr:g} false positives it detects only "
              f"{report.heldout_tpr:.0%} of the held-out successes; train longer (--steps), record more episodes, "
              f"or accept more false positives (--target-fpr)", file=sys.stderr)
    print(f"(written to {out}; use it with reward_source:=classifier classifier:={out})")
    return 0


def cmd_pretrain_sources(args: argparse.Namespace) -> int:
    """Vid2Act's teachers: one world model + policy per source dataset (another task's episodes), trained
    offline; resumable. Prints the vid2act_teachers=... override that trains the target with them."""
    import torch

    from modem_ros.agent.modem import ModemAgent
    from modem_ros.agent.vid2act import SpaceMap, TeacherError, pretrain_teacher, shape_mismatch
    from modem_ros.data.demos import load_demo_dir
    from modem_ros.data.replay import EpisodeBuffer

    target = _config(args)
    try:
        space_map = SpaceMap.parse(args.state_map, args.action_map)
    except ValueError as err:
        raise ConfigError(f"pretrain-sources: {err}") from err
    out_dir = Path(args.out)
    written = []
    for directory in [d.strip() for d in args.sources.split(",") if d.strip()]:
        bags, bad = load_demo_dir(directory, target.frame_stack)
        for err in bad:
            print(f"pretrain-sources: skipping {err}")
        tasks = sorted({str(b.meta.get("task", "")) for b in bags})
        if len(tasks) != 1 or not tasks[0]:
            raise ConfigError(f"pretrain-sources: {directory} must hold readable episodes of one task, found "
                              f"{len(bags)} of tasks {tasks}")
        overrides = parse_overrides(args.overrides) | {"img_size": str(target.img_size)}
        cfg = load_config(tasks[0], overrides, preset=args.preset)
        diff = shape_mismatch(cfg, target, space_map)
        if diff:
            raise ConfigError(f"pretrain-sources: source {tasks[0]} ({directory}) and target {target.task} differ in "
                              f"{diff} (source, target); Vid2Act needs equal image shapes, and equal state and "
                              "action sizes unless --state-map/--action-map say which target dimension each "
                              "source dimension is")
        torch.manual_seed(cfg.seed)
        agent = ModemAgent(cfg)
        buffer = EpisodeBuffer(cfg, sum(len(b.episode) for b in bags) + cfg.episode_length, agent.device,
                               name=f"source {tasks[0]}")
        for bag in bags:
            try:
                buffer.add(bag.episode)
            except ValueError as err:
                raise ConfigError(f"pretrain-sources: {bag.path}: {err}") from err
        out_dir.mkdir(parents=True, exist_ok=True)
        try:
            written.append(pretrain_teacher(agent, buffer, args.updates, out_dir / f"{tasks[0]}.pt", tasks[0],
                                            space_map=space_map))
        except TeacherError as err:
            raise ConfigError(f"pretrain-sources: {err}") from err
    if not written:
        raise ConfigError("pretrain-sources: give at least one source directory")
    print("vid2act_teachers=" + ",".join(str(p) for p in written))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from modem_ros.paths import default_run_dir
    from modem_ros.run import build_trainer

    cfg = _config(args)
    run_dir = Path(args.run_dir) if args.run_dir else default_run_dir(cfg.task)
    trainer = build_trainer(cfg, run_dir)
    try:
        evaluations = trainer.run()
    except KeyboardInterrupt:
        print(f"modem-ros train: interrupted at agent step {trainer.step} (env step "
              f"{trainer.step * cfg.action_repeat}); the checkpoints and metrics written so far are in {run_dir}",
              file=sys.stderr, flush=True)
        raise
    final = evaluations[-1] if evaluations else {}
    print(f"done: {json.dumps(final)}")
    return 0


def cmd_demos(args: argparse.Namespace) -> int:
    from modem_ros.data import demos

    if args.action == "generate":
        cfg = _config(args)
        written, attempts, has_success = demos.generate(
            cfg, args.n, Path(args.out), only_success=not args.keep_failures and args.policy == "expert"
            and not args.noise, policy=args.policy, noise=args.noise, checkpoint=args.checkpoint or "")
        rate = sum(1 for a in attempts if a) / len(attempts)
        outcome = (f"{args.policy} success {sum(attempts)}/{len(attempts)} ({100 * rate:.0f}%)" if has_success
                   else "dense reward, no success to report (see `demos info` for returns)")
        print(f"wrote {len(written)} episodes of {cfg.task} to {args.out}; {outcome}")
        return 0 if len(written) == args.n else 1
    if args.action == "validate":
        if args.preset or args.overrides:  # the image size the given preset trains at
            cfg = _config(args)
            good, _ = demos.load_demo_dir(args.out, frame_stack=1)
            wrong = [b.path.name for b in good if b.episode.rgb[0].shape[1:] != (cfg.img_size, cfg.img_size)]
            if wrong:
                print(f"{len(wrong)} episode(s) not at the {cfg.img_size} px this config trains at: "
                      f"{', '.join(wrong[:5])}{' ...' if len(wrong) > 5 else ''}")
                return 1
        return validate_command(args.out)
    if args.action == "import":
        from modem_ros.data.lerobot_import import import_lerobot

        summary = import_lerobot(args.out, args.video, _config(args), camera=args.camera)
        print(f"imported {summary['episodes']} episodes from {args.out} (camera {summary['camera']}, "
              f"{summary['fps']:g} fps, every {summary['every']} frame(s) at {topics.AGENT_HZ} Hz) "
              f"into {summary['path']}")
        return 0
    if args.action == "export":
        from modem_ros.data.lerobot import export_lerobot

        try:
            summary = export_lerobot(args.out, args.video, fps=args.fps or topics.AGENT_HZ)
        except (demos.DemoError, FileExistsError) as err:
            print(f"export failed: {err}", file=sys.stderr)
            return 1
        print(f"wrote LeRobotDataset v3.0 to {summary['path']}: {summary['episodes']} episodes, "
              f"{summary['frames']} frames at {summary['fps']} fps, tasks {summary['tasks']}")
        return 0
    good, bad = demos.load_demo_dir(args.out, frame_stack=1)  # listing needs no frame stacks
    if args.action == "view":
        from modem_ros.data.video import write_video

        frames = write_video([(bag.path.name, bag.episode) for bag in good], args.video)
        print(f"wrote {frames} frames of {len(good)} episodes to {args.video}")
        for err in bad:
            print(f"unreadable, skipped: {err}")
        return 0 if not bad else 1
    print(f"{'episode':<20} {'steps':>6} {'success':>8} {'return':>9} {'image':>8}  task")
    for bag in good:
        e, task = bag.episode, bag.meta.get("task", "?")
        size = "x".join(str(n) for n in e.rgb[0].shape[1:])
        print(f"{bag.path.name:<20} {len(e):>6} {str(e.succeeded):>8} {e.total_reward:>9.2f} {size:>8}  {task}")
    for err in bad:
        print(f"unreadable: {err}")
    print(f"{len(good)} episodes, {sum(len(b.episode) for b in good)} steps, "
          f"{sum(b.episode.succeeded for b in good)} successful, {len(bad)} unreadable")
    return 0 if not bad else 1


def validate_command(directory: str) -> int:
    from modem_ros.data.demos import DemoError
    from modem_ros.data.validate import validate_dataset

    try:
        reports, problems = validate_dataset(directory)
    except DemoError as err:
        print(f"invalid: {err}")
        return 1
    for report in reports:
        status = "ok" if not report.problems else f"{len(report.problems)} problem(s)"
        print(f"{report.path.name:<20} {report.steps:>5} steps  {status}")
        for problem in report.problems:
            print(f"  {report.path}: {problem}")
    for problem in problems:
        print(problem)
    bad = sum(bool(r.problems) for r in reports)
    print(f"{len(reports)} episodes, {bad} with problems" + (f", {len(problems)} dataset problem(s)" if problems
                                                             else ""))
    return 1 if bad or not reports else 0


def cmd_call(args: argparse.Namespace) -> int:
    from modem_ros.call import call

    ok, message = call(args.service, args.timeout)
    print(message, file=sys.stdout if ok else sys.stderr)
    return 0 if ok else 1


def cmd_launch(args: argparse.Namespace) -> int:
    from modem_ros.graph import MODE_ARGUMENT, NODES_ARGUMENT, PARAMS_FILE_ARGUMENT
    from modem_ros.launcher import launch

    if args.name is None or args.show:
        names = [args.name] if args.name else list(LAUNCHES)
        for name in names:
            spec = LAUNCHES[name]
            nodes = "; ".join(f"{mode}: {', '.join(n.name for n in spec.mode_nodes(mode))}" for mode in spec.modes) \
                if spec.modes else ", ".join(n.name for n in spec.nodes)
            print(f"{name}: {spec.description}\n  nodes: {nodes} (parameters: config/{spec.params_file})")
            for arg, a in spec.arguments.items():
                print(f"  {arg + ':=' + repr(a.default):<28} {a.description}")
            if spec.modes:
                print(f"  {MODE_ARGUMENT + ':=' + repr(spec.modes[0]):<28} Bridges: {' | '.join(spec.modes)}.")
            print(f"  {NODES_ARGUMENT + ':=...':<28} Comma-separated subset of the nodes to start here "
                  "(multi-machine).")
            print(f"  {PARAMS_FILE_ARGUMENT + ':=...':<28} Node-parameter YAML instead of config/{spec.params_file}.")
        return 0
    return launch(args.name, args.overrides)


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
    bench.add_argument("what", choices=["plan", "update", "budgets", "env", "graph", "learn", "actors",
                                                "weights"],
                       help="plan / update: latency and FLOPs; budgets: return vs planning budget of a "
                            "checkpoint; env: agent steps/s of the task's adapter with rendering; graph: "
                            "ROS graph vs plain loop per env step, and observation -> action round trip; "
                            "learn: learning curves of MoDem and baselines over seeds (resumable); actors: "
                            "train_sim with 1, 2, 4 ... sim actors to one step count; weights: checkpoint -> "
                            "planner swap over DDS")
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
    bench.add_argument("--episodes", type=int, default=20,
                       help="budgets: eval episodes per budget; graph: episodes each way")
    bench.add_argument("--seeds", type=int, default=3, help="learn: seeds 1..N")
    bench.add_argument("--seed", type=int, action="append", default=None,
                       help="learn: run this seed only (repeatable; instead of --seeds), e.g. one seed per machine")
    bench.add_argument("--collect", action="store_true",
                       help="learn: train nothing; record the evaluations the run directories hold "
                            "(runs stopped early marked complete: false)")
    bench.add_argument("--merge", nargs="+", default=None, metavar="JSON",
                       help="learn: merge result files of one task and preset (seeds run apart) into --out")
    bench.add_argument("--methods", default="modem,bc,tdmpc", help="learn: comma-separated methods")
    bench.add_argument("--runs-root", default="runs/bench-learn",
                       help="learn, actors: where each run's directory goes")
    bench.add_argument("--actors", default="1,2,4", help="actors: comma-separated actor counts")
    bench.add_argument("--steps", type=int, default=0, help="actors: agent steps per run (0: the preset's)")
    bench.add_argument("--planner-threads", type=int, default=0,
                       help="actors: torch threads of each planner (0: torch's default, every core)")
    bench.set_defaults(func=cmd_bench)

    demos = sub.add_parser("demos", help="generate or inspect demonstration bags (rosbag2 + MCAP)")
    demos.add_argument("action", choices=["generate", "info", "view", "validate", "export", "import"])
    demos.add_argument("out", nargs="?", default=None,
                       help="info / view / validate / export: the dataset directory; import: the LeRobot dataset")
    common(demos)
    demos.add_argument("--out", dest="out_opt", default=None,
                       help="generate: dataset directory; view: the MP4 file to write; "
                            "export / import: the new dataset")
    demos.add_argument("--format", default="lerobot", choices=["lerobot"],
                       help="export / import: LeRobotDataset v3.0")
    demos.add_argument("--camera", default=None, help="import: the video feature to use when there are several")
    demos.add_argument("--policy", default="expert", choices=["expert", "bc", "random"],
                       help="generate: who acts (bc: a checkpoint's policy, --checkpoint); not the expert alone "
                            "or with noise: every episode is kept, of whatever quality")
    demos.add_argument("--noise", type=float, default=0.0, help="generate: std of Gaussian noise on every action")
    demos.add_argument("--checkpoint", default=None, help="generate --policy bc: the agent checkpoint")
    demos.add_argument("--fps", type=int, default=None, help="export: frames per second; default the agent rate "
                       "(topics.AGENT_HZ, 10 Hz), which the bags are stamped at")
    demos.add_argument("-n", type=int, default=5, help="generate: number of episodes")
    demos.add_argument("--keep-failures", action="store_true", help="generate: also keep failed episodes")
    demos.set_defaults(func=cmd_demos)

    classifier = sub.add_parser("classifier", help="train a success classifier on recorded episodes "
                                "(reward_source classifier on the robot)")
    common(classifier)
    classifier.add_argument("episodes", help="comma-separated episode directories (demos, robot recordings with "
                                             "the operator's success marks, failed episodes)")
    classifier.add_argument("--out", help="the classifier file to write")
    classifier.add_argument("--check", metavar="FILE", help="judge this saved classifier on the episodes instead "
                            "(ones it never saw): frame rates and episodes it would reward wrongly, as JSON")
    classifier.add_argument("--steps", type=int, default=500, help="training steps (balanced batches of 64)")
    classifier.add_argument("--target-fpr", type=float, default=0.01,
                            help="false-positive rate the threshold is chosen for on held-out episodes")
    classifier.set_defaults(func=cmd_classifier)

    sources = sub.add_parser("pretrain-sources", help="Vid2Act teachers: a world model per other task's dataset")
    sources.add_argument("sources", help="comma-separated dataset directories, each one other task's episodes "
                                         "(with actions; `demos generate` makes them)")
    common(sources)
    sources.add_argument("--out", required=True, help="directory for the teacher files (<source task>.pt)")
    sources.add_argument("--updates", type=int, default=2000, help="offline updates per teacher")
    sources.add_argument("--state-map", default="", help="sources of another state size: for each source state "
                         "dimension, the target's dimension it is (comma-separated), e.g. 0,1,2")
    sources.add_argument("--action-map", default="", help="sources of another action size: for each source "
                         "action dimension, the target's dimension it is, e.g. 0,1 (x, y of a 4-d target); "
                         "replay guides only the mapped dimensions")
    sources.set_defaults(func=cmd_pretrain_sources)

    train = sub.add_parser("train", help="three-phase MoDem training in plain Python")
    common(train)
    train.add_argument("--run-dir", default=None, help="where metrics and checkpoints go")
    train.add_argument("--device", default=None, help="cpu, cuda or auto")
    train.set_defaults(func=cmd_train)

    call = sub.add_parser("call", help="call a robot graph's service: estop, estop-reset (the only way an e-stop "
                          "is cleared), reset (next episode), recover (after a fault)")
    call.add_argument("service", choices=list(SERVICES))
    call.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the service and its answer")
    call.set_defaults(func=cmd_call)
    launch = sub.add_parser("launch", help=f"run a node graph ({', '.join(LAUNCHES)}) as supervised processes")
    launch.add_argument("name", nargs="?", default=None, choices=list(LAUNCHES))
    launch.add_argument("overrides", nargs="*", metavar="name:=value", help="launch arguments, e.g. task:=mw-assembly")
    launch.add_argument("--show", action="store_true", help="list the launch's arguments and exit")
    launch.set_defaults(func=cmd_launch)
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
    if args.command == "demos":
        # generate: --out is the dataset; view / export: the positional is the dataset and --out the result
        writes = args.action in ("view", "export", "import")
        args.video = args.out_opt if writes else None
        args.out = args.out if writes else (args.out_opt or args.out)
        if not args.out:
            parser.error("demos: give the dataset directory (--out DIR for generate, DIR otherwise)")
        if writes and not args.video:
            parser.error(f"demos {args.action}: say where to write with --out")
    from modem_ros.agent.modem import CheckpointWriteError
    from modem_ros.data.demos import DemoError
    from modem_ros.run import RunDirInUse
    from modem_ros.trainer import ResumeError

    interrupt_on_sigterm()  # what a stopped command wrote is whole (atomic); it says so and exits 130
    try:
        status = args.func(args)
        sys.stdout.flush()  # inside the try: a closed pipe then raises here, not at the interpreter's exit
        return status
    except KeyboardInterrupt:
        print(f"modem-ros {args.command}: interrupted", file=sys.stderr, flush=True)
        return 130
    except BrokenPipeError:
        # the reader went away (`modem-ros demos info DIR | head`): stop quietly, as a shell tool does, and keep
        # Python's exit-time flush from raising again into the closed pipe
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what the shell reports for a tool the pipe stopped
    except ConfigError as exc:
        print(f"modem-ros: config error: {exc}", file=sys.stderr)
        return 2
    except (DemoError, RunDirInUse, ResumeError, CheckpointWriteError, FileNotFoundError, FileExistsError) as exc:
        print(f"modem-ros {args.command}: {exc}", file=sys.stderr)  # one line, no traceback
        return 1
    except ModuleNotFoundError as exc:
        extra = EXTRA_OF_MODULE.get((exc.name or "").split(".")[0])
        if extra is None:
            raise
        print(f"modem-ros {args.command}: needs {exc.name}, which the '{extra}' extra installs: "
              f"scripts/install.sh {extra}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
