from pathlib import Path

import pytest

from engine.config import load_config
from engine.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def test_shipped_profiles_load_with_project_root_as_base():
    for name in ("demo", "paper"):
        config = load_config(ROOT / "experiments" / f"{name}.toml")
        assert config.name == name
        assert config.base_dir == ROOT
        assert len(config.training.models) == 10


def test_paper_profile_is_the_full_protocol():
    config = load_config(ROOT / "experiments" / "paper.toml")
    assert (config.scenarios.folds, config.scenarios.seeds, config.training.epochs) == (5, 5, 30)
    assert config.training.weights == "imagenet"
    assert config.data.frames_per_class == 20


def test_paper_profile_keeps_the_papers_scaling_and_rate_and_the_demo_documents_its_changes():
    paper = load_config(ROOT / "experiments" / "paper.toml").training
    assert (paper.input_scaling, paper.lr_schedule, paper.learning_rate) == ("rescale", "constant", 0.001)
    demo = load_config(ROOT / "experiments" / "demo.toml")
    assert (demo.training.input_scaling, demo.training.lr_schedule) == ("centered", "warmup_cosine")
    assert demo.scenarios.kept_seeds == demo.scenarios.seeds == 2


def test_kept_seeds_below_one_is_refused(tmp_path):
    path = tmp_path / "x.toml"
    path.write_text("[scenarios]\nkept_seeds = 0\n")
    with pytest.raises(ConfigError, match="kept_seeds must be at least 1"):
        load_config(path)


def test_unknown_setting_is_refused_with_its_name(tmp_path):
    path = tmp_path / "x.toml"
    path.write_text("[training]\nepochz = 3\n")
    with pytest.raises(ConfigError, match="unknown setting 'epochz'"):
        load_config(path)


def test_wrong_type_is_refused(tmp_path):
    path = tmp_path / "x.toml"
    path.write_text('[training]\nepochs = "many"\n')
    with pytest.raises(ConfigError, match="epochs must be int"):
        load_config(path)


def test_invalid_toml_gets_a_sentence(tmp_path):
    path = tmp_path / "x.toml"
    path.write_text("[training\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path)


def test_missing_file_gets_a_sentence(tmp_path):
    with pytest.raises(ConfigError, match="No config file"):
        load_config(tmp_path / "nope.toml")
