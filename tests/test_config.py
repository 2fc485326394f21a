from __future__ import annotations

import pytest

from modem_ros.config import ConfigError, field_docs, load_config, parse_overrides


def test_reference_defaults_and_suite_values():
    mw = load_config("mw-assembly")
    assert (mw.suite, mw.iterations, mw.episode_length, mw.state_dim, mw.action_dim) == ("metaworld", 4, 100, 8, 4)
    assert (mw.kappa_init, mw.kappa_final, mw.kappa_steps) == (0.5, 0.25, 50000)
    assert (mw.img_size, mw.frame_stack, mw.num_samples, mw.num_elites, mw.num_pi_trajs) == (224, 2, 512, 64, 25)
    assert (mw.batch_size, mw.lr, mw.rho, mw.tau, mw.per_alpha, mw.per_beta) == (256, 3e-4, 0.5, 0.01, 0.6, 0.4)
    door = load_config("adroit-door")
    assert (door.iterations, door.state_dim, door.action_dim, door.kappa_init) == (8, 30, 28, 0.75)
    assert load_config("adroit-pen").bc_iterations == 500
    assert load_config("quadruped-run").bc_iterations == 5000
    assert mw.pad == 10 and load_config("mw-assembly", {"img_size": 84}).pad == 4


def test_every_field_is_documented():
    docs = field_docs()
    assert all(docs.values()), [k for k, v in docs.items() if not v]


def test_overrides_are_typed():
    cfg = load_config("toy-reach", parse_overrides(["batch_size=32", "lr=1e-3", "amp_bf16=true"]))
    assert (cfg.batch_size, cfg.lr, cfg.amp_bf16) == (32, 1e-3, True)


@pytest.mark.parametrize("overrides, words", [
    ({"batchsize": 3}, ["unknown config key 'batchsize'", "overrides"]),
    ({"batch_size": "many"}, ["'batch_size'", "int", "'many'"]),
    ({"lr": "nan"}, ["'lr'", "float"]),
    ({"amp_bf16": "maybe"}, ["'amp_bf16'", "bool"]),
    ({"kappa_init": 1.5}, ["'kappa_init'", "[0, 1]"]),
    ({"num_elites": 10_000}, ["'num_elites'"]),
    ({"img_size": 16}, ["'img_size'", ">= 43"]),
])
def test_bad_values_name_the_key(overrides, words):
    with pytest.raises(ConfigError) as err:
        load_config("toy-reach", overrides)
    for word in words:
        assert word in str(err.value)


def test_unknown_task_lists_known_ones():
    with pytest.raises(ConfigError, match="unknown task 'mw-nope'.*mw-assembly"):
        load_config("mw-nope")


def _suite_dir(tmp_path, text):
    (tmp_path / "suites").mkdir()
    (tmp_path / "suites" / "bad.yaml").write_text(text)
    return tmp_path


def test_unknown_key_in_a_suite_file_names_file_and_key(tmp_path):
    directory = _suite_dir(tmp_path, "suite: bad\ndefaults:\n  horizn: 3\ntasks:\n  t1: {}\n")
    with pytest.raises(ConfigError, match=r"unknown config key 'horizn' in .*bad.yaml \(defaults\)"):
        load_config("t1", directory=directory)


def test_malformed_yaml_names_the_file(tmp_path):
    directory = _suite_dir(tmp_path, "suite: bad\ntasks: [\n")
    with pytest.raises(ConfigError, match="bad.yaml: not valid YAML"):
        load_config("t1", directory=directory)


def test_override_syntax_error():
    with pytest.raises(ConfigError, match="key=value"):
        parse_overrides(["batch_size"])


def test_preset_applies_and_missing_preset_is_reported():
    assert load_config("toy-reach", preset="cpu-small").img_size == 84
    with pytest.raises(ConfigError, match="preset 'nope' not found"):
        load_config("toy-reach", preset="nope")
