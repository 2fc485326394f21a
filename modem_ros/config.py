"""Typed MoDem configuration: one dataclass, the reference defaults, per-suite YAML overrides.

Resolution order (later wins): dataclass defaults (the reference values of MODEM.md) ->
config/suites/<suite>.yaml `defaults` -> that file's `tasks.<task>` entry -> preset file -> overrides.
Every key is checked: an unknown key or a value of the wrong type raises ConfigError naming the key
and the file it came from.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from modem_ros.paths import config_dir


class ConfigError(ValueError):
    """A configuration value or file is malformed; the message names the key and its source."""


def param(default: Any, doc: str) -> Any:
    """A dataclass field with its one-line documentation attached (shown by `modem-ros info`)."""
    return field(default=default, metadata={"doc": doc})


MVE_STARTS = ("real+imagined", "imagined", "real")  # moto_mve_starts' choices

@dataclass
class ModemConfig:
    # --- task and environment -----------------------------------------------------------------
    task: str = param("toy-reach", "Task name; it selects the suite file config/suites/<suite>.yaml.")
    suite: str = param("", "Suite of the task (set from the suite file, not by hand).")
    seed: int = param(1, "Seed for torch, numpy and the environment.")
    img_size: int = param(224, "Square camera image size in pixels (reference 224; 84 is cheaper).")
    frame_stack: int = param(2, "Number of stacked RGB frames in one observation.")
    state_dim: int = param(0, "Size of the proprioceptive state vector (per task).")
    action_dim: int = param(0, "Size of the action vector, normalized to [-1, 1] (per task).")
    action_repeat: int = param(2, "Simulator steps per agent step.")
    episode_length: int = param(100, "Agent steps per episode.")
    discount: float = param(0.99, "Discount factor of rewards and the TD target.")
    # --- budget and schedule of the three phases ----------------------------------------------
    train_steps: int = param(100_000, "Agent steps of environment interaction (seed + interactive); "
                                      "env steps = agent steps x action_repeat.")
    seed_steps: int = param(5000, "Agent steps collected by the noisy BC policy before planning (the "
                                  "episode that starts at seed_steps plans; the seed update burst follows it).")
    demos: int = param(5, "Number of demonstration episodes; 0 = no demos: no BC phase, no demo batches "
                          "(TD-MPC, MoDem's ablation).")
    seeding: str = param("bc", "Who acts before seed_steps: bc (MoDem: the BC policy with min_std noise) or "
                               "uniform (TD-MPC: uniform random actions).")
    seed_std: float = param(0.0, "Noise std of the BC policy while it seeds (seeding=bc), its noise clipped at "
                                 "0.3 like every policy sample; 0 = min_std, the reference. An ablation knob: "
                                 "how much action diversity the seed data gets (BENCHMARKS.md, mw-hammer).")
    bc_iters: int = param(0, "Policy pretraining iterations; 0 means 2 * demos * episode_length.")
    eval_freq: int = param(2000, "ENV steps (agent steps x action_repeat, as the reference counts) "
                                 "between evaluations.")
    eval_episodes: int = param(30, "Episodes per evaluation.")
    save_freq: int = param(20_000, "ENV steps (agent steps x action_repeat, as the reference counts) "
                                   "between step_*.pt checkpoints.")
    bc_sync_target: bool = param(False, "Copy the BC-pretrained weights into the target network after "
                                        "phase 1; the reference keeps the target's random init (False).")
    # --- planning (MPPI) ----------------------------------------------------------------------
    iterations: int = param(6, "MPPI iterations per planned action (per suite).")
    num_samples: int = param(512, "Gaussian action sequences sampled per iteration.")
    num_elites: int = param(64, "Top-scoring sequences used to refit mean and std.")
    mixture_coef: float = param(0.05, "Share of extra sequences rolled out by the policy prior.")
    min_std: float = param(0.05, "Noise std of the policy prior and final lower bound of the std.")
    max_std: float = param(2.0, "Initial and upper bound of the MPPI std.")
    temperature: float = param(0.5, "Softmax temperature over elite values.")
    momentum: float = param(0.1, "Weight of the previous mean when refitting the MPPI mean.")
    horizon: int = param(5, "Planning and model-learning horizon in agent steps.")
    std_schedule_init: float = param(0.1, "Lower bound of the MPPI std at step 0 (-> min_std).")
    std_schedule_steps: int = param(12_500, "Agent steps over which the std bound anneals to min_std "
                                            "(evaluated at the step of the latest update, as the reference).")
    horizon_schedule_steps: int = param(25_000, "Agent steps over which the planning horizon grows 1 -> "
                                                "horizon (evaluated at each episode's first step).")
    # --- offline data (paper 002; the defaults are reference MoDem) -----------------------------
    offline_steps: int = param(0, "Updates of world model, reward, critic and policy on the offline + demo data "
                                  "after BC, before seeding (an offline pre-training phase); 0 = none (reference).")
    offline_aug_ratio: float = param(0.0, "Model-based augmentation in the offline phase's second half: this share "
                                          "of TD-target next latents is the world model's one-step prediction "
                                          "(paper 002 uses 0.5); 0 = off.")
    bc_reg_coef: float = param(0.0, "MOTO's behaviour regularisation: weight of |pi(z_t) - a_t|^2 toward the "
                                    "data's actions in the policy loss; 0 = off (reference).")
    bc_reg_steps: int = param(10_000, "Agent steps after seed_steps over which bc_reg_coef anneals to 0.")
    moto_ensemble: int = param(0, "MOTO's uncertainty: K extra latent dynamics + reward heads (agent/moto.py) whose "
                                  "disagreement penalises imagined rewards, in planning and in value expansion; "
                                  "0 = off (reference), else >= 2.")
    moto_penalty: float = param(1.0, "lambda of MOTO's penalty: imagined reward - lambda * the members' spread "
                                     "(std over members of the predicted next latent, mean over dims).")
    moto_mve_horizon: int = param(0, "MOTO's model-based value expansion: critic targets from this many imagined "
                                     "steps of the ensemble from real and imagined latents; 0 = off (reference). "
                                     "Needs moto_ensemble.")
    moto_mve_coef: float = param(1.0, "Weight of the value-expansion critic loss beside the TD loss.")
    moto_mve_td: bool = param(False, "Value expansion's horizon in the reference TD loss too: its targets "
                                     "bootstrap from the M-step imagined return at the real next latent instead "
                                     "of the target critic there, so both critic losses regress Q toward the same "
                                     "horizon's values (off: the two disagree while Q is far from them).")
    moto_mve_starts: str = param("real+imagined", "Where value-expansion rollouts start: real+imagined (MOTO: the "
                                                   "encoded real latents and the world model's predicted ones), "
                                                   "imagined (predicted only) or real (encoded only).")
    moto_critic_detached: bool = param(False, "The TD loss trains the Q heads only, on detached latents, not "
                                              "the encoder and dynamics (as MOTO's critic, whose representation "
                                              "its model loss alone trains); off: the reference's value gradient "
                                              "into the latent.")
    # --- safe exploration (MoDem-V2 options; the defaults are reference MoDem) ------------------
    agency_transfer_steps: int = param(0, "Agent steps after seed_steps over which the executed action passes "
                                          "from the BC policy to MPC: each training step executes the frozen BC "
                                          "policy with probability linear(1 -> 0); 0 = off (reference).")
    plan_max_action: float = param(1.0, "Bound on |a| of every action the planner samples, returns or explores "
                                        "with; 1 = the action box (reference).")
    plan_max_delta: float = param(0.0, "Bound on the change between consecutive actions of every planned "
                                       "sequence; 0 = off (reference).")
    q_ensemble: int = param(0, "Conservative planning (MoDem-V2, agent/conservative.py): K extra Q heads on the TD "
                               "targets; planning's terminal value is their mean - q_ensemble_lambda * std. "
                               "0 = off (reference), else >= 2.")
    q_ensemble_lambda: float = param(1.0, "lambda of conservative planning: how much the Q heads' disagreement "
                                          "lowers a trajectory's value.")
    # --- transfer from other tasks (Vid2Act, paper 003; off by default = reference) -------------
    vid2act_teachers: str = param("", "Comma-separated teacher checkpoints, one per source dataset of another task "
                                      "(`modem-ros pretrain-sources`); empty = off (reference).")
    vid2act_distill_coef: float = param(1.0, "Weight of the domain-selective distillation loss (student's "
                                             "predicted latents toward the similarity-weighted teachers'); 0 = "
                                             "action replay only.")
    vid2act_projection: str = param("shared", "How teachers' predictions reach the student's latent space: "
                                              "'shared' (the authors' code) one linear map for all teachers, "
                                              "the importance head reading each teacher's own latent; "
                                              "'per_teacher' one map per teacher, the head reading the mapped "
                                              "prediction (each map fits the student alike, so the weights "
                                              "flatten: BENCHMARKS.md, issue 21).")
    vid2act_weight_floor: float = param(0.1, "Lower bound of each teacher's weight in the distillation loss (the "
                                             "authors' m): no source is dropped entirely.")
    vid2act_replay_coef: float = param(1.0, "Action replay: weight of |pi(z_t) - g_t|^2 toward the teachers' "
                                            "similarity-weighted actions at agent step 0; 0 = distillation only.")
    vid2act_replay_steps: int = param(10_000, "Agent steps over which vid2act_replay_coef fades linearly to 0 "
                                              "(the target's own data takes over).")
    # --- learning -----------------------------------------------------------------------------
    batch_size: int = param(256, "Snippets per gradient step.")
    lr: float = param(3e-4, "Adam learning rate (model, policy and BC).")
    reward_coef: float = param(0.5, "Weight of the reward prediction loss.")
    value_coef: float = param(0.1, "Weight of the TD value loss.")
    consistency_coef: float = param(2.0, "Weight of the latent consistency loss.")
    rho: float = param(0.5, "Temporal weight rho^t of the losses over the horizon.")
    tau: float = param(0.01, "EMA coefficient of the target network.")
    update_freq: int = param(2, "Updates between EMA target updates.")
    grad_clip_norm: float = param(10.0, "Gradient norm clip.")
    per_alpha: float = param(0.6, "Prioritized replay exponent of priorities.")
    per_beta: float = param(0.4, "Prioritized replay importance-sampling exponent.")
    kappa_init: float = param(0.75, "Demo share of each batch at the start of interaction.")
    kappa_final: float = param(0.25, "Demo share of each batch after the annealing steps.")
    kappa_steps: int = param(50_000, "Agent steps over which the demo share anneals linearly.")
    sim_operator_patience: int = param(0, "Sim, plain training loop only: a scripted stand-in for the teleop "
                                          "operator (sim_operator.py) takes over a training episode with the env's "
                                          "expert after this many steps without reward progress or success; its "
                                          "steps are interventions (flagged, oversampled); 0 = off.")
    sim_operator_steps: int = param(10, "Steps the scripted operator drives per takeover before handing back.")
    intervention_capacity: int = param(1000, "Agent steps of operator-driven data (teleop takeovers while "
                                             "training, runs of at least `horizon` steps) also kept in the demo "
                                             "buffer, so they are oversampled like demos (HIL-SERL); 0 = flagged "
                                             "and logged only. Sim runs have none.")
    # --- architecture -------------------------------------------------------------------------
    num_channels: int = param(32, "Channels of every conv layer of the image encoder.")
    enc_dim: int = param(256, "Hidden width of the state encoder and the fusion MLP.")
    mlp_dim: int = param(512, "Hidden width of dynamics, reward, policy and Q MLPs.")
    latent_dim: int = param(50, "Size of the latent state z.")
    # --- execution ----------------------------------------------------------------------------
    device: str = param("auto", "Torch device: auto (cuda if available), cpu or cuda[:N].")
    amp_bf16: bool = param(False, "bfloat16 speed option: forward passes under bf16 autocast (GPU; the "
                                  "CPU update too); on CPU, planning's hidden GEMMs in bf16 with fp32 outputs.")
    encoder_chunk: int = param(0, "Samples per no-grad encoder pass in an update; 0 = auto "
                                  "(batch_size on CPU, where cache-sized passes are faster; all on GPU).")
    compile: bool = param(False, "torch.compile the update's loss computation (GPU speed option).")
    cuda_graph: bool = param(True, "On CUDA, replay planning (encoder + MPPI) as CUDA graphs, one per "
                                   "horizon and mode, captured on first use; ignored on CPU.")
    demo_dir: str = param("", "Directory (or comma-separated directories) of demonstration episodes, "
                              "oversampled by kappa; empty means generate them.")
    offline_dirs: str = param("", "Comma-separated directories of rewarded episodes of any quality (robot "
                                  "logs, imported datasets), loaded into the replay buffer and sampled like "
                                  "interaction data; they count in no step budget.")

    @property
    def pad(self) -> int:
        """Random-shift padding in pixels: img_size / 21 (4 at 84, 10 at 224)."""
        return max(1, self.img_size // 21)

    @property
    def num_pi_trajs(self) -> int:
        return int(self.mixture_coef * self.num_samples)

    @property
    def bc_iterations(self) -> int:
        return self.bc_iters or 2 * self.demos * self.episode_length

    @property
    def rgb_shape(self) -> tuple[int, int, int]:
        return (3 * self.frame_stack, self.img_size, self.img_size)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def validate(self) -> ModemConfig:
        """Check ranges that would otherwise fail deep inside training."""
        positive = ["img_size", "frame_stack", "state_dim", "action_dim", "action_repeat",
                    "episode_length", "num_samples", "horizon", "batch_size", "iterations",
                    "latent_dim", "mlp_dim", "enc_dim", "num_channels", "update_freq"]
        for name in positive:
            if getattr(self, name) <= 0:
                raise ConfigError(f"config key '{name}' must be > 0, got {getattr(self, name)}")
        if not 0 < self.num_elites <= self.num_samples + self.num_pi_trajs:
            raise ConfigError(f"config key 'num_elites' must be in 1..num_samples+policy trajectories, "
                              f"got {self.num_elites}")
        for name in ["kappa_init", "kappa_final", "mixture_coef", "rho", "tau"]:
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"config key '{name}' must be in [0, 1], got {getattr(self, name)}")
        for name in ["eval_freq", "save_freq", "eval_episodes", "sim_operator_steps"]:
            if getattr(self, name) <= 0:
                raise ConfigError(f"config key '{name}' must be > 0, got {getattr(self, name)}")
        for name in ["train_steps", "seed_steps", "bc_iters", "std_schedule_steps", "horizon_schedule_steps",
                     "kappa_steps", "encoder_chunk", "intervention_capacity", "sim_operator_patience"]:
            if getattr(self, name) < 0:
                raise ConfigError(f"config key '{name}' must be >= 0, got {getattr(self, name)}")
        for name in ["lr", "temperature", "grad_clip_norm", "max_std"]:
            if getattr(self, name) <= 0:
                raise ConfigError(f"config key '{name}' must be > 0, got {getattr(self, name)}")
        if not 0.0 < self.discount <= 1.0:
            raise ConfigError(f"config key 'discount' must be in (0, 1], got {self.discount}")
        if not 0.0 <= self.min_std <= self.max_std:
            raise ConfigError(f"config keys min_std ({self.min_std}) and max_std ({self.max_std}) must satisfy "
                              "0 <= min_std <= max_std")
        if not 0.0 <= self.std_schedule_init <= self.max_std:
            raise ConfigError(f"config key 'std_schedule_init' must be in [0, max_std], got {self.std_schedule_init}")
        if self.device != "auto" and not re.fullmatch(r"cpu|cuda(:\d+)?", self.device):
            raise ConfigError(f"config key 'device' must be auto, cpu, cuda or cuda:N, got {self.device!r}")
        if self.offline_steps < 0 or not 0.0 <= self.offline_aug_ratio <= 1.0:
            raise ConfigError(f"config keys offline_steps ({self.offline_steps}) must be >= 0 and offline_aug_ratio "
                              f"({self.offline_aug_ratio}) in [0, 1]")
        if self.bc_reg_coef < 0 or self.bc_reg_steps < 0:
            raise ConfigError(f"config keys bc_reg_coef ({self.bc_reg_coef}) and bc_reg_steps ({self.bc_reg_steps}) "
                              "must be >= 0")
        for name in ["moto_ensemble", "q_ensemble"]:  # an ensemble of one has no disagreement to measure
            if getattr(self, name) == 1 or getattr(self, name) < 0:
                raise ConfigError(f"config key '{name}' must be 0 (off) or >= 2 members, got {getattr(self, name)}")
        for name in ["moto_penalty", "moto_mve_horizon", "moto_mve_coef", "q_ensemble_lambda"]:
            if getattr(self, name) < 0:
                raise ConfigError(f"config key '{name}' must be >= 0, got {getattr(self, name)}")
        if self.moto_mve_td and self.moto_mve_horizon == 0:
            raise ConfigError("config key moto_mve_td needs moto_mve_horizon > 0: it bootstraps from value expansion")
        if self.moto_mve_horizon > 0 and self.moto_ensemble == 0:
            raise ConfigError(f"config key moto_mve_horizon ({self.moto_mve_horizon}) needs moto_ensemble >= 2: "
                              "value expansion imagines with the ensemble")
        if self.moto_mve_starts not in MVE_STARTS:
            raise ConfigError(f"config key 'moto_mve_starts' must be one of {', '.join(MVE_STARTS)}, "
                              f"got {self.moto_mve_starts!r}")
        if not 0.0 < self.plan_max_action <= 1.0:
            raise ConfigError(f"config key 'plan_max_action' must be in (0, 1], got {self.plan_max_action}")
        for name in ["agency_transfer_steps", "plan_max_delta"]:
            if getattr(self, name) < 0:
                raise ConfigError(f"config key '{name}' must be >= 0, got {getattr(self, name)}")
        for name in ["vid2act_distill_coef", "vid2act_replay_coef", "vid2act_replay_steps"]:
            if getattr(self, name) < 0:
                raise ConfigError(f"config key '{name}' must be >= 0, got {getattr(self, name)}")
        if self.vid2act_projection not in ("shared", "per_teacher"):
            raise ConfigError(f"config key 'vid2act_projection' must be shared or per_teacher, got "
                              f"{self.vid2act_projection!r}")
        if not 0.0 <= self.vid2act_weight_floor <= 1.0:
            raise ConfigError(f"config key 'vid2act_weight_floor' must be in [0, 1], got {self.vid2act_weight_floor}")
        if 0 < self.train_steps <= self.seed_steps:
            raise ConfigError(f"config keys train_steps ({self.train_steps}) <= seed_steps ({self.seed_steps}): "
                              "training would end before the first planned episode (train_steps=0 = BC only)")
        if self.demos < 0:
            raise ConfigError(f"config key 'demos' must be >= 0, got {self.demos}")
        if self.seed_std < 0:
            raise ConfigError(f"config key 'seed_std' must be >= 0 (0 = min_std), got {self.seed_std}")
        if self.seeding not in ("bc", "uniform"):
            raise ConfigError(f"config key 'seeding' must be bc or uniform, got {self.seeding!r}")
        if self.img_size < 43:
            raise ConfigError(f"config key 'img_size' must be >= 43 for the conv encoder, got {self.img_size}")
        return self


FIELDS = {f.name: f for f in dataclasses.fields(ModemConfig)}


def field_docs() -> dict[str, str]:
    return {name: f.metadata.get("doc", "") for name, f in FIELDS.items()}


def _coerce(key: str, value: Any, source: str) -> Any:
    """Convert a YAML/CLI value to the declared type of `key`, or raise naming key and source."""
    if key not in FIELDS:
        raise ConfigError(f"unknown config key '{key}' in {source}")
    want = type(FIELDS[key].default)
    if want is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
    elif want is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif want is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if math.isfinite(value):
                return float(value)
        elif isinstance(value, str):
            try:
                out = float(value)
                if math.isfinite(out):
                    return out
            except ValueError:
                pass
    elif want is str and isinstance(value, str):
        return value
    raise ConfigError(f"config key '{key}' in {source} must be of type {want.__name__}, "
                      f"got {value!r} ({type(value).__name__})")


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def suite_files(directory: Path | None = None) -> list[Path]:
    return sorted(((directory or config_dir()) / "suites").glob("*.yaml"))


def find_task(task: str, directory: Path | None = None) -> tuple[Path, dict[str, Any]]:
    """Return the suite file that lists `task` and its parsed content."""
    known: list[str] = []
    for path in suite_files(directory):
        data = _read_yaml(path)
        tasks = data.get("tasks") or {}
        if not isinstance(tasks, dict):
            raise ConfigError(f"{path}: 'tasks' must be a mapping of task name -> overrides")
        if task in tasks:
            return path, data
        known.extend(tasks)
    close = difflib.get_close_matches(task, known, n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    raise ConfigError(f"unknown task '{task}'; {hint}known tasks: {', '.join(sorted(known))}")


def _apply(values: dict[str, Any], mapping: dict[str, Any], source: str) -> None:
    for key, value in mapping.items():
        values[key] = _coerce(key, value, source)


def load_config(task: str = "toy-reach", overrides: dict[str, Any] | None = None,
                preset: str | Path | None = None, directory: Path | None = None) -> ModemConfig:
    """Resolve the configuration of `task` (see module docstring for the order)."""
    path, data = find_task(task, directory)
    unknown_sections = set(data) - {"suite", "defaults", "tasks"}
    if unknown_sections:
        raise ConfigError(f"{path}: unknown top-level key(s) {sorted(unknown_sections)}; "
                          "expected suite, defaults, tasks")
    values: dict[str, Any] = {"task": task, "suite": _coerce("suite", data.get("suite", path.stem), str(path))}
    _apply(values, data.get("defaults") or {}, f"{path} (defaults)")
    _apply(values, data["tasks"][task] or {}, f"{path} (tasks.{task})")
    if preset:
        preset_path = Path(preset)
        if not preset_path.exists():
            preset_path = (directory or config_dir()) / "presets" / f"{preset}.yaml"
        if not preset_path.exists():
            raise ConfigError(f"preset '{preset}' not found (looked for a file and {preset_path})")
        _apply(values, _read_yaml(preset_path), str(preset_path))
    _apply(values, overrides or {}, "overrides")
    if values["task"] != task:
        raise ConfigError("config key 'task' cannot be overridden; pass --task instead")
    return ModemConfig(**values).validate()


# The task-wide parameters of every graph node, with their defaults and descriptions.
NODE_PARAMETERS = {
    "task": ("toy-reach", "Task name (config/suites/*.yaml)."),
    "preset": ("", "Budget preset (config/presets/*.yaml or a path); empty or 'reference' = MoDem's "
                   "reference budget."),
    "seed": (1, "Seed for torch, numpy and the environment."),
    "config_overrides": ("", "Space-separated key=value config overrides."),
}


def load_node_config(params: dict[str, Any]) -> ModemConfig:
    """The config a graph node resolves from its NODE_PARAMETERS (missing ones take their defaults);
    the pip launcher calls it too, to refuse a bad task or preset before any process starts."""
    values = {name: params.get(name, default) for name, (default, _) in NODE_PARAMETERS.items()}
    overrides = parse_overrides(str(values["config_overrides"]).split())
    overrides.setdefault("seed", values["seed"])
    preset = str(values["preset"])
    return load_config(str(values["task"]), overrides, preset=None if preset in ("", "reference") else preset)


def parse_overrides(items: list[str]) -> dict[str, str]:
    """Parse `key=value` command-line overrides (values are typed later against the dataclass)."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override '{item}' is not of the form key=value")
        out[key.strip()] = value.strip()
    return out
