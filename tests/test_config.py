import subprocess
import sys
from pathlib import Path

import pytest

from engine.config import config_from_dict, load_config
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


def test_the_command_line_prints_a_sentence_with_its_bracketed_section_names(tmp_path):
    from rich.console import Console

    from painlens.cli import error_markup

    path = tmp_path / "x.toml"
    path.write_text("[trainnig]\nepochs = 3\n")
    with pytest.raises(ConfigError) as refused:
        load_config(path)
    console = Console(record=True, width=400)
    console.print(error_markup(refused.value), highlight=False)
    shown = console.export_text()
    assert "unknown section [trainnig];" in shown, shown  # rich drops an unescaped [word]


def test_missing_file_gets_a_sentence(tmp_path):
    with pytest.raises(ConfigError, match="No config file"):
        load_config(tmp_path / "nope.toml")


# (section, settings, what the sentence must say): every value a later stage could not use is refused
# when the config is read, naming the setting and what it may be.
REFUSED = [
    ("execution", {"local_workers": 0}, r"\[execution\] local_workers must be at least 1, not 0"),
    ("training", {"lr_schedule": "cyclic"}, r"\[training\] lr_schedule must be one of 'constant', 'warmup_cosine', not 'cyclic'"),
    ("training", {"input_scaling": "standardize"}, r"\[training\] input_scaling must be one of 'rescale', 'centered', 'preprocess_input'"),
    ("training", {"optimizer": "adagrad"}, r"\[training\] optimizer must be one of .*'adam', 'rmsprop', 'sgd', not 'adagrad'"),
    ("training", {"mixed_precision": "yes"}, r"\[training\] mixed_precision must be one of 'auto', 'on', 'off'"),
    ("training", {"class_weight": "auto"}, r"\[training\] class_weight must be one of 'none', 'balanced'"),
    ("training", {"weights": "random"}, r"\[training\] weights must be one of 'imagenet', 'none'"),
    ("training", {"models": ["WeiNet", "ResNet18"]}, r"unknown network 'ResNet18' in \[training\] models; choose from AlexNet, SongNet"),
    ("training", {"epochs_per_model": {"Weinet": 3}}, r"unknown network 'Weinet' in \[training\] epochs_per_model; choose from AlexNet"),
    ("training", {"input_size": {"VGG-16": 64}}, r"unknown network 'VGG-16' in \[training\] input_size; choose from AlexNet"),
    ("training", {"input_size": {"InceptionV3": 64}}, r"\[training\] input_size.InceptionV3 must be at least 75"),
    ("training", {"input_size": {"WeiNet": 16}}, r"\[training\] input_size.WeiNet must be at least 32"),
    ("training", {"epochs_per_model": {"WeiNet": 0}}, r"\[training\] epochs_per_model.WeiNet must be at least 1"),
    ("training", {"steps_per_epoch_per_model": {"VGG16": 0}}, r"\[training\] steps_per_epoch_per_model.VGG16 must be at least 1, not 0"),
    ("training", {"steps_per_epoch_per_model": {"VGG-16": 4}}, r"unknown network 'VGG-16' in \[training\] steps_per_epoch_per_model"),
    ("training", {"unregularized": ["SongNet", "Songnet"]}, r"unknown network 'Songnet' in \[training\] unregularized"),
    ("training", {"warmup_fraction": 1.0}, r"\[training\] warmup_fraction must be at least 0 and below 1, not 1.0"),
    ("training", {"warmup_fraction": -0.1}, r"\[training\] warmup_fraction must be at least 0 and below 1"),
    ("training", {"external_epoch_share": 0}, r"\[training\] external_epoch_share must be above 0 and at most 1, not 0"),
    ("training", {"external_epoch_share": 1.5}, r"\[training\] external_epoch_share must be above 0 and at most 1"),
    ("training", {"epochs": 0}, r"\[training\] epochs must be at least 1, not 0"),
    ("training", {"batch_size": 0}, r"\[training\] batch_size must be at least 1"),
    ("training", {"micro_batch_size": -1}, r"\[training\] micro_batch_size must be 0 \(auto\) or more"),
    ("training", {"learning_rate": 0}, r"\[training\] learning_rate must be positive, not 0.0"),
    ("training", {"learning_rate": -0.001}, r"\[training\] learning_rate must be positive"),
    ("explain", {"images_per_class": -1}, r"\[explain\] images_per_class must be 0 or more"),
    ("explain", {"num_samples": 1}, r"\[explain\] num_samples must be at least 2"),
    ("explain", {"n_segments": 1}, r"\[explain\] n_segments must be between 2 and 255"),
    ("explain", {"n_segments": 300}, r"\[explain\] n_segments must be between 2 and 255, not 300"),
    ("explain", {"compactness": 0}, r"\[explain\] compactness must be positive"),
    ("explain", {"batch_size": 0}, r"\[explain\] batch_size must be at least 1"),
    ("preprocess", {"margin": -0.1}, r"\[preprocess\] margin must be 0 or more"),
    ("preprocess", {"crop_size": 16}, r"\[preprocess\] crop_size must be at least 32"),
    ("preprocess", {"min_confidence": 1.5}, r"\[preprocess\] min_confidence must be between 0 and 1"),
    ("preprocess", {"detect_max_side": -1}, r"\[preprocess\] detect_max_side must be 0 \(full size\) or more"),
    ("preprocess", {"workers": 0}, r"\[preprocess\] workers must be at least 1"),
    ("preprocess", {"background": "blur"}, r"\[preprocess\] background must be one of 'auto', 'u2net', 'fallback', 'none'"),
    ("data", {"frames_per_class": 0}, r"\[data\] frames_per_class must be at least 1"),
    ("data", {"pspi_threshold": -1}, r"\[data\] pspi_threshold must be at least 0 and below 16"),
    ("data", {"pspi_threshold": 16}, r"\[data\] pspi_threshold must be at least 0 and below 16"),
    ("data", {"synthetic_size": "huge"}, r"\[data\] synthetic_size must be one of .*'tiny', 'demo', 'paper', not 'huge'"),
    ("scenarios", {"folds": 1}, r"\[scenarios\] folds must be at least 2"),
    ("scenarios", {"seeds": 0}, r"\[scenarios\] seeds must be at least 1"),
    ("scenarios", {"names": ["image", "crossval"]}, r"unknown scenario 'crossval' in \[scenarios\] names; choose from image"),
]


@pytest.mark.parametrize("section, settings, sentence", REFUSED, ids=[f"{s}-{next(iter(v))}" for s, v, _ in REFUSED])
def test_a_value_no_stage_can_use_is_refused_when_the_config_is_read(section, settings, sentence):
    with pytest.raises(ConfigError, match=sentence):
        config_from_dict({section: settings}, source="x.toml")


def test_a_bad_training_option_in_a_file_names_the_file_and_the_setting(tmp_path):
    path = tmp_path / "x.toml"
    path.write_text('[training]\nmodels = ["WeiNet"]\nlr_schedule = "warmup-cosine"\n')
    with pytest.raises(ConfigError, match=r"x.toml: \[training\] lr_schedule must be one of 'constant', 'warmup_cosine', "
                                          r"not 'warmup-cosine'"):
        load_config(path)


def test_edge_values_and_any_case_of_an_optimizer_name_are_accepted():
    config = config_from_dict({
        "training": {"optimizer": "RMSprop", "warmup_fraction": 0.0, "micro_batch_size": 0,
                     "input_size": {"InceptionV3": 75, "WeiNet": 32}, "epochs_per_model": {"WeiNet": 1}},
        "data": {"pspi_threshold": 15.5, "synthetic_size": ""},
        "preprocess": {"margin": 0, "min_confidence": 1.0, "crop_size": 32},
        "explain": {"images_per_class": 0, "n_segments": 255},
    })
    assert config.training.optimizer == "RMSprop" and config.training.input_size["InceptionV3"] == 75


def test_external_runs_take_their_share_of_a_networks_epochs_rounded_up():
    training = config_from_dict({"training": {"models": ["AlexNet", "WeiNet", "VGG16"], "epochs": 1,
                                              "epochs_per_model": {"AlexNet": 8, "WeiNet": 3},
                                              "external_epoch_share": 0.5}}).training
    assert [training.epochs_for(m) for m in ("AlexNet", "WeiNet", "VGG16")] == [8, 3, 1]
    assert [training.epochs_for(m, "image") for m in ("AlexNet", "WeiNet", "VGG16")] == [8, 3, 1]
    assert [training.epochs_for(m, "external") for m in ("AlexNet", "WeiNet", "VGG16")] == [4, 2, 1]
    assert config_from_dict({"training": {"epochs": 5}}).training.epochs_for("WeiNet", "external") == 5  # the paper's


def test_reading_a_config_with_network_names_imports_no_keras():
    # The checks read the model registry; a config read must stay instant (the dashboard and the CLI read configs).
    code = ("import sys; from engine.config import load_config; load_config('experiments/demo.toml'); "
            "print('keras' in sys.modules, 'tensorflow' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "False"]
