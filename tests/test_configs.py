"""The ready configs: each loads, the default mirrors the dataclasses, names resolve,
bad keys and values are named in the error, and overrides apply on top of a file."""

from __future__ import annotations

import pytest
import torch
import yaml

from rtrl_rl.config import (
    Config, ConfigError, available_configs, build_config, config_dir, load_config, load_yaml, resolve_config_path,
    to_dict,
)

READY = ["default", "memory/recall", "memory/tmaze", "atari/pong", "atari/breakout",
         "procgen/coinrun", "procgen/starpilot", "dmlab/rooms_watermaze",
         "dmlab/rooms_select_nonmatching_object", "popgym/easy", "popgym/replica_faithful", "popgym/replica_cpu",
         "minatar/segment", "minatar/stream"]
#: suites that use the reference implementation's hyperparameters (Irie et al., ICLR 2024)
REFERENCE = [n for n in READY if n.split("/")[0] in ("atari", "procgen", "dmlab")]


def test_every_ready_config_is_shipped_and_nothing_else():
    assert sorted(available_configs()) == sorted(READY)


@pytest.mark.parametrize("name", READY)
def test_every_config_loads_and_says_what_it_expects(name):
    path = resolve_config_path(name)
    config = load_config(path)
    assert isinstance(config, Config)
    comments = [line.lstrip("#") for line in path.read_text().splitlines() if line.startswith("#")]
    header = " ".join(" ".join(comments).split())
    # an expectation is either a published figure (said to be one) or this package's own
    # measurement (said where it is recorded)
    low = header.lower()
    assert "Expectation" in header and ("not a measurement of this package" in low or "docs/results" in low)


def test_default_yaml_equals_the_dataclass_defaults():
    assert load_yaml(config_dir() / "default.yaml") == to_dict(Config())


@pytest.mark.parametrize("name", REFERENCE)
def test_reference_hyperparameters(name):
    c = load_config(resolve_config_path(name))
    t = c.train
    assert (t.optimizer, t.lr, t.rmsprop_alpha, t.rmsprop_eps, t.lr_decay) == ("rmsprop", 6e-4, 0.99, 0.01, True)
    assert (t.max_grad_norm, t.entropy_cost, t.baseline_cost, t.gamma) == (40.0, 0.01, 0.5, 0.99)
    assert (t.reward_clip, t.loss_reduction) == (1.0, "sum")
    dmlab = name.startswith("dmlab/")
    assert (t.segment_length, c.agent.hidden_size) == ((100, 512) if dmlab else (50, 256))
    assert (c.agent.core, c.agent.learning, c.agent.encoder) == ("elstm", "rtrl", "impala")
    assert (c.agent.prev_action, c.agent.prev_reward) == (False, True)


@pytest.mark.parametrize("name", ["atari/pong", "atari/breakout", "dmlab/rooms_watermaze"])
def test_suites_without_options_get_their_env_defaults(name):
    assert load_config(resolve_config_path(name)).env.options == {}


@pytest.mark.parametrize("name", ["procgen/coinrun", "procgen/starpilot", "memory/tmaze"])
def test_env_options_are_exactly_those_in_the_file(name):
    path = resolve_config_path(name)
    assert load_config(path).env.options == yaml.safe_load(path.read_text())["env"]["options"]


@pytest.mark.parametrize("name", READY)
def test_a_resolved_config_round_trips_as_resume_and_evaluate_read_it(name):
    config = load_config(resolve_config_path(name))
    assert to_dict(build_config(to_dict(config))) == to_dict(config)


@pytest.mark.parametrize("spelling", ["atari/pong", "atari/pong.yaml", "configs/atari/pong.yaml"])
def test_names_resolve_to_the_shipped_file(spelling):
    # from a checkout "configs/..." is also a real relative path; both mean the same file
    assert resolve_config_path(spelling).resolve() == (config_dir() / "atari" / "pong.yaml").resolve()


def test_an_existing_file_path_wins(tmp_path):
    own = tmp_path / "mine.yaml"
    own.write_text("train:\n  seed: 5\n")
    assert resolve_config_path(own) == own
    assert load_config(resolve_config_path(str(own))).train.seed == 5


def test_unknown_name_lists_the_ready_configs():
    with pytest.raises(ConfigError, match=r"atari/pongg.*ready configs: \[.*'atari/pong'"):
        resolve_config_path("atari/pongg")


def test_unknown_key_in_a_file_names_the_key_and_the_valid_ones(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("train:\n  lrr: 0.1\n")
    with pytest.raises(ConfigError, match=r"'train\.lrr'.*'lr'"):
        load_config(path)


@pytest.mark.parametrize("override, pattern", [
    ("agent.core=gru9", r"'agent\.core' must be one of \['elstm'"),
    ("agent.learning=bptt", r"'agent\.learning' must be one of \['rtrl', 'tbptt', 'snap1', 'uoro', 'kfrtrl', 'none'\]"),
    ("train.total_steps=lots", r"'train\.total_steps' expects int"),
    ("env.num_envs=true", r"'env\.num_envs' expects int"),
    ("agent=big", r"'agent' is a section"),
    ("agent.sizee=3", r"unknown config key 'agent\.sizee'.*'hidden_size'"),
    ("seed", r"key=value"),
])
def test_bad_overrides_name_the_key_and_the_choices(override, pattern):
    with pytest.raises(ConfigError, match=pattern):
        load_config(None, [override])


def test_dotted_overrides_apply_on_top_of_a_ready_config(tmp_path):
    overrides = ["env.num_envs=8", "agent.core=mingru", "agent.hidden_size=32", "agent.learning=tbptt",
                 "train.segment_length=20", "train.total_steps=1000", "train.seed=3", f"run_dir={tmp_path}"]
    c = load_config(resolve_config_path("atari/pong"), overrides)
    assert (c.env.id, c.env.num_envs, c.agent.core, c.agent.hidden_size) == ("atari:Pong", 8, "mingru", 32)
    assert (c.agent.learning, c.train.segment_length, c.train.total_steps) == ("tbptt", 20, 1000)
    assert (c.train.seed, c.run_dir, c.train.lr) == (3, str(tmp_path), 6e-4)


def test_changing_the_env_drops_the_memory_task_options():
    c = load_config(None, ["env.id=gym:CartPole-v1"])
    assert (c.env.id, c.env.options) == ("gym:CartPole-v1", {})
    assert load_config(None, ["train.lr=0.01"]).env.options == Config().env.options


#: config -> the optional package its suite needs (skipped where it is not installed)
_NEEDS = {"atari": "ale_py", "procgen": "procgen", "dmlab": "deepmind_lab", "popgym": "popgym"}
#: configs whose two updates take about a minute (30 PPO epochs of 1024-step BPTT): their fast test
#: below shrinks the epochs too
_SLOW_TO_TRAIN = {"popgym/replica_faithful"}


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in _SLOW_TO_TRAIN else n
                                  for n in READY])
def test_every_config_trains_for_a_few_steps(name, tmp_path, extra=()):
    """Two updates of each ready config as written (segment length, core, encoder,
    optimizer), shrunk only in streams and budget (and PPO's minibatches, which split the
    streams), on the synchronous trainer."""
    if name.split("/")[0] in _NEEDS:
        pytest.importorskip(_NEEDS[name.split("/")[0]])
    from rtrl_rl.runtime import train_run

    minibatches = min(load_config(resolve_config_path(name)).ppo.minibatches, 2)
    config = load_config(resolve_config_path(name), [
        "env.num_envs=2", f"ppo.minibatches={minibatches}", *extra, "runtime.actors=0", "train.device=cpu", "log.progress=false",
        "log.eval_episodes=0", f"run_dir={tmp_path}"])
    config.train.total_steps = 2 * 2 * config.train.segment_length
    config.train.threads = 1  # tiny batches: more threads only contend on a shared 2-core box
    threads = torch.get_num_threads()
    try:
        summary = train_run(config)  # the stream trainer for agent.algorithm=stream
    finally:
        torch.set_num_threads(threads)
    # two segments of every stream, or, for the stream learner, one update per step of both streams
    updates = config.train.total_steps // 2 if config.agent.algorithm == "stream" else 2
    assert summary["steps"] == config.train.total_steps and summary["updates"] == updates
    assert load_yaml(tmp_path / "config.yaml") == to_dict(config)
    assert list(tmp_path.glob("events.out.tfevents.*"))


@pytest.mark.parametrize("name", sorted(_SLOW_TO_TRAIN))
def test_slow_configs_train_with_one_epoch(name, tmp_path):
    """The configs of :data:`_SLOW_TO_TRAIN` as the test above runs them, with one PPO epoch."""
    test_every_config_trains_for_a_few_steps(name, tmp_path, extra=("ppo.epochs=1",))


def test_numbers_in_exponent_form_and_integral_floats():
    c = load_config(None, ["train.lr=6e-4", "train.total_steps=1e6", "train.seed=2.0", "train.gamma=1"])
    assert (c.train.lr, c.train.total_steps, c.train.seed, c.train.gamma) == (6e-4, 1_000_000, 2, 1.0)
    assert isinstance(c.train.total_steps, int) and isinstance(c.train.gamma, float)
    for bad in ("train.total_steps=1.5", "train.lr=fast", "train.lr_decay=1"):
        with pytest.raises(ConfigError, match=bad.split("=")[0]):
            load_config(None, [bad])


@pytest.mark.parametrize("override, key", [
    ("train.segment_length=0", "train.segment_length"),
    ("train.threads=-1", "train.threads"),
    ("train.device=tpu", "train.device"),
    ("train.total_steps=-5", "train.total_steps"),
    ("runtime.actors=-1", "runtime.actors"),
    ("runtime.keep_checkpoints=0", "runtime.keep_checkpoints"),
    ("runtime.step_timeout_s=-1", "runtime.step_timeout_s"),
    ("env.num_envs=0", "env.num_envs"),
    ("train.lr=0", "train.lr"),
    ("train.gamma=1.5", "train.gamma"),
    ("train.gamma=.nan", "train.gamma"),
    ("log.eval_interval_steps=0", "log.eval_interval_steps"),
    ("runtime.actors=3", "env.num_envs"),  # 128 streams do not split over 3 actors
])
def test_invalid_numbers_exit_2_naming_the_key_before_anything_is_written(tmp_path, capsys, override, key):
    from rtrl_rl.cli import main

    run_dir = tmp_path / "run"
    assert main(["train", f"run_dir={run_dir}", "log.progress=false", override]) == 2
    assert f"'{key}'" in capsys.readouterr().err
    assert not run_dir.exists()


def test_every_default_obeys_its_own_rules():
    # build_config checks every key it merges: the defaults, merged explicitly, must pass
    assert to_dict(build_config(to_dict(Config()))) == to_dict(Config())


def test_the_removed_runtime_device_names_its_replacement():
    with pytest.raises(ConfigError, match="'runtime.device' was removed: 'train.device' replaces it"):
        load_config(None, ["runtime.device=cuda"])
    # a stored config (a resumed run) that still names it goes on once train.device is given
    stored = {**to_dict(Config()), "runtime": {**to_dict(Config())["runtime"], "device": "auto"}}
    with pytest.raises(ConfigError, match="train.device"):
        build_config(stored)
    assert build_config(stored, {"train": {"device": "auto"}}).train.device == "auto"


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize("actors", [0, 2])
def test_an_unavailable_device_exits_2_in_both_trainers(tmp_path, capsys, actors):
    from rtrl_rl.cli import main

    run_dir = tmp_path / "run"
    code = main(["train", f"run_dir={run_dir}", "train.device=cuda:1", f"runtime.actors={actors}",
                 "env.num_envs=4", "log.progress=false"])
    assert code == 2 and "CUDA is not available" in capsys.readouterr().err
    assert not run_dir.exists()
    # the trainers themselves check it too (for library users)
    from rtrl_rl.runtime import train_with_actors
    from rtrl_rl.training.sync_trainer import train

    config = load_config(None, [f"run_dir={run_dir}", "train.device=cuda", f"runtime.actors={actors}", "env.num_envs=4"])
    with pytest.raises(ConfigError, match="train.device=cuda"):
        (train_with_actors if actors else train)(config)
    assert not run_dir.exists()


def test_the_popgym_config_is_the_protocols_best_rtrl_rule():
    # configs/popgym/easy is what the 15M-step POPGym page measures as its best RTRL rule: the two must not drift apart
    from rtrl_rl.bench import popgym, popgym_protocol as protocol

    ready = load_config(resolve_config_path("popgym/easy"), ["env.id=popgym:RepeatFirstEasy"])
    run = next(s for s in popgym.specs(protocol.GRIDS["full"](), protocol.rules())
               if s["task"] == "RepeatFirstEasy" and s["rule"] == protocol.BEST_RTRL)
    bench = load_config(None, run["overrides"])
    assert to_dict(ready)["agent"] == to_dict(bench)["agent"]
    for key in ("entropy_cost", "segment_length", "total_steps", "lr", "truncation_bootstrap"):
        assert getattr(ready.train, key) == getattr(bench.train, key), key
    assert ready.train.total_steps == 15_000_000 and ready.train.truncation_bootstrap is False


def test_the_popgym_replicas_are_popgyms_baseline_settings():
    # configs/popgym/replica_faithful: POPGym's PPO script and RLlib's defaults (its header says which)
    f = load_config(resolve_config_path("popgym/replica_faithful"))
    a, t, p = f.agent, f.train, f.ppo
    assert (a.algorithm, a.core, a.learning, a.hidden_size, a.encoder, a.encoder_size, a.heads) == \
        ("ppo", "gru", "tbptt", 256, "popgym", 128, "popgym")
    assert (a.prev_action, a.start_flag, a.prev_reward) == (True, True, False)
    batch = f.env.num_envs * t.segment_length
    assert (batch, batch // p.minibatches, p.epochs, t.lr, t.gamma, p.gae_lambda) == (65_536, 8_192, 30, 5e-5, 0.99, 1.0)
    # RLlib's value loss is vf_loss_coeff (1.0) x (V - R)^2; this library's is baseline_cost x 0.5 (V - R)^2
    assert (t.baseline_cost, p.clip, t.entropy_cost, t.max_grad_norm, p.value_clip, p.target_kl) == \
        (2.0, 0.3, 0.0, 0.0, 0.0, 0.0)
    assert (t.total_steps, t.truncation_bootstrap, t.target_success) == (15_000_000, False, 0.0)
    # configs/popgym/replica_cpu: the same run but for the batch, the epochs and the learning rate
    cpu = to_dict(load_config(resolve_config_path("popgym/replica_cpu")))
    faithful = to_dict(f)
    differs = {(section, key) for section, values in faithful.items() if isinstance(values, dict)
               for key, value in values.items() if cpu[section][key] != value}
    assert differs == {("env", "num_envs"), ("ppo", "epochs"), ("ppo", "minibatches"), ("train", "lr")}
    assert cpu["env"]["num_envs"] * cpu["train"]["segment_length"] < batch and cpu["ppo"]["epochs"] < p.epochs
