"""One training run: a tiny network learns a visible pattern, repeats exactly with the same seed,
batches and labels are handled as documented (the JAX twin is test_train_jax.py)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from engine.config import TrainingSection
from engine.training.train import TrainBatches, micro_batching, predict_proba, train_run, warmup_cosine

SIZE = 32  # the tests that train are marked slow: `make test-fast` runs only the others


def pattern_images(n: int, seed: int, size: int = SIZE) -> tuple[np.ndarray, np.ndarray]:
    """Light noisy images (N, size, size, 3) uint8; class 1 has a dark square in the middle."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    x = rng.integers(150, 256, size=(n, size, size, 3)).astype(np.uint8)
    c, h = size // 2, size // 4
    x[y == 1, c - h:c + h, c - h:c + h] = rng.integers(0, 60, size=(int(y.sum()), 2 * h, 2 * h, 3))
    return x, y


CONFIG = TrainingSection(epochs=5, batch_size=16, learning_rate=1e-4, input_size={"WeiNet": SIZE, "SongNet": SIZE})


@pytest.fixture(scope="module")
def tiny_runs():
    x, y = pattern_images(48, seed=0)
    x_test, y_test = pattern_images(16, seed=1)
    seen = []
    first = train_run("WeiNet", x, y, x_test, y_test, config=CONFIG, seed=3, on_epoch=seen.append)
    second = train_run("WeiNet", x, y, config=CONFIG, seed=3)
    other = train_run("WeiNet", x, y, config=CONFIG, seed=4)
    return {"first": first, "second": second, "other": other, "seen": seen, "x_test": x_test, "y_test": y_test}


@pytest.mark.slow
def test_tiny_training_lowers_the_loss_and_learns_the_pattern(tiny_runs):
    history = tiny_runs["first"].history
    assert history[-1]["loss"] < 0.5 * history[0]["loss"]
    p_pain = predict_proba(tiny_runs["first"].model, tiny_runs["x_test"], batch_size=16)
    assert ((p_pain >= 0.5) == tiny_runs["y_test"]).mean() >= 0.75


@pytest.mark.slow
def test_same_seed_gives_the_same_predictions_and_another_seed_does_not(tiny_runs):
    x_test = tiny_runs["x_test"]
    first = predict_proba(tiny_runs["first"].model, x_test)
    np.testing.assert_array_equal(first, predict_proba(tiny_runs["second"].model, x_test))
    assert not np.array_equal(first, predict_proba(tiny_runs["other"].model, x_test))


@pytest.mark.slow
def test_a_reused_compiled_model_trains_exactly_like_a_fresh_one(tiny_runs):
    x, y = pattern_images(48, seed=0)
    x_test = tiny_runs["x_test"]
    kept = train_run("WeiNet", x, y, config=CONFIG, seed=4, reuse_compiled=True)  # builds and keeps
    assert not kept.info["reused"]
    np.testing.assert_array_equal(predict_proba(kept.model, x_test), predict_proba(tiny_runs["other"].model, x_test))
    again = train_run("WeiNet", x, y, config=CONFIG, seed=3, reuse_compiled=True)  # resets the kept one
    assert again.info["reused"] and again.model is kept.model
    assert [r["loss"] for r in again.history] == [r["loss"] for r in tiny_runs["first"].history]
    np.testing.assert_array_equal(predict_proba(again.model, x_test), predict_proba(tiny_runs["first"].model, x_test))


@pytest.mark.slow
def test_history_has_one_record_per_epoch_and_is_streamed_to_on_epoch(tiny_runs):
    run = tiny_runs["first"]
    assert [r["epoch"] for r in run.history] == [1, 2, 3, 4, 5]
    assert {"loss", "accuracy", "val_loss", "val_accuracy", "seconds"} <= set(run.history[0])
    assert tiny_runs["seen"] == run.history
    assert run.info["optimizer"] == "rmsprop" and run.info["input_size"] == SIZE
    assert run.info["mixed_precision"] is False and run.weights_used == "none"


@pytest.mark.slow
def test_a_model_kept_for_uploads_has_no_optimizer_and_predicts_the_same(tiny_runs, tmp_path):
    import io
    import zipfile

    import h5py

    from engine.models.registry import load_model
    from engine.training.executor import save_for_inference

    model = tiny_runs["first"].model
    save_for_inference(model, tmp_path / "model.keras")
    with zipfile.ZipFile(tmp_path / "model.keras") as archive:
        weights = h5py.File(io.BytesIO(archive.read("model.weights.h5")), "r")
        assert "optimizer" not in weights and "layers" in weights
    kept = load_model(tmp_path / "model.keras")
    assert not kept.compiled
    np.testing.assert_array_equal(predict_proba(kept, tiny_runs["x_test"]), predict_proba(model, tiny_runs["x_test"]))
    assert not list(tmp_path.glob(".*.tmp*"))  # written atomically, nothing left behind


@pytest.mark.slow
def test_predict_proba_gives_the_same_answer_for_any_batch_size(tiny_runs):
    model, x_test = tiny_runs["first"].model, tiny_runs["x_test"]
    p_pain = predict_proba(model, x_test, batch_size=16)
    assert p_pain.shape == (16,) and ((p_pain >= 0) & (p_pain <= 1)).all()
    np.testing.assert_allclose(predict_proba(model, x_test, batch_size=5), p_pain, atol=1e-6)
    with pytest.raises(ValueError, match="expects images"):
        predict_proba(model, np.zeros((2, 40, 40, 3), np.uint8))


def test_warmup_cosine_rises_linearly_then_decays_to_zero():
    rates = [warmup_cosine(step, 100, 1e-3, 0.2) for step in range(101)]
    assert rates[0] == pytest.approx(1e-5)
    assert rates[10] == pytest.approx(1e-5 + 0.99e-3 * 0.5)
    assert max(rates) == pytest.approx(1e-3) and rates.index(max(rates)) == 20
    assert all(a >= b for a, b in zip(rates[20:], rates[21:]))  # never rises after the warm-up
    assert rates[60] == pytest.approx(0.5e-3) and rates[100] == pytest.approx(0.0, abs=1e-12)
    assert warmup_cosine(0, 10, 1e-3, 0.0) == pytest.approx(1e-3)  # no warm-up: starts at the peak


@pytest.mark.slow
def test_scheduled_centred_training_learns_repeats_and_survives_compiled_model_reuse():
    x, y = pattern_images(48, seed=0)
    x_test, y_test = pattern_images(16, seed=1)
    config = TrainingSection(epochs=5, batch_size=16, learning_rate=1e-3, optimizer="adam", lr_schedule="warmup_cosine",
                             input_scaling="centered", input_size={"WeiNet": SIZE})
    fresh = train_run("WeiNet", x, y, config=config, seed=3)
    p_fresh = predict_proba(fresh.model, x_test)
    assert ((p_fresh >= 0.5) == y_test).mean() >= 0.75
    assert float(fresh.model.optimizer.learning_rate) == pytest.approx(1e-3)  # the configured rate is restored
    constant = train_run("WeiNet", x, y, config=TrainingSection(**{**config.__dict__, "lr_schedule": "constant"}), seed=3)
    assert [r["loss"] for r in constant.history] != [r["loss"] for r in fresh.history]  # the schedule acted
    train_run("WeiNet", x, y, config=dataclasses.replace(config, epochs=1), seed=4, reuse_compiled=True)  # another state
    reused = train_run("WeiNet", x, y, config=config, seed=3, reuse_compiled=True)
    assert reused.info["reused"] and reused.info["lr_schedule"] == "warmup_cosine"
    np.testing.assert_array_equal(predict_proba(reused.model, x_test), p_fresh)


def test_micro_batches_split_big_batches_on_a_cpu_only():
    assert micro_batching(128, 0, on_gpu=False) == (32, 4)
    assert micro_batching(128, 0, on_gpu=True) == (128, 1)
    assert micro_batching(100, 0, on_gpu=False) == (25, 4)
    assert micro_batching(16, 0, on_gpu=False) == (16, 1)
    assert micro_batching(64, 16, on_gpu=True) == (16, 4)


@pytest.mark.slow
def test_gradient_accumulation_and_class_weights_run():
    x, y = pattern_images(24, seed=2)
    y[:4] = 1  # 14 pain / 10 no pain
    config = TrainingSection(epochs=1, batch_size=16, micro_batch_size=8, learning_rate=1e-4,
                             class_weight="balanced", input_size={"SongNet": SIZE})
    run = train_run("SongNet", x, y, config=config, seed=0)
    assert run.info["micro_batch_size"] == 8 and run.info["accumulation_steps"] == 2
    assert run.model.optimizer.gradient_accumulation_steps == 2
    assert np.isfinite(run.history[0]["loss"])


@pytest.mark.slow
def test_a_step_cap_trains_that_many_updates_per_epoch_on_fresh_draws_of_the_data():
    x, y = pattern_images(64, seed=5)  # 4 batches of 16 per epoch without the cap
    config = TrainingSection(epochs=3, batch_size=16, micro_batch_size=8, learning_rate=1e-4,
                             steps_per_epoch_per_model={"SongNet": 2}, input_size={"SongNet": SIZE})
    run = train_run("SongNet", x, y, config=config, seed=0)
    assert int(run.model.optimizer.iterations.numpy()) == 3 * 2  # epochs x capped updates (of 2 micro-batches each)
    assert len(run.history) == 3
    batches = TrainBatches(x, y, 16, seed=0, max_batches=2)
    assert len(batches) == 2
    first = batches[0][0]
    batches.on_epoch_end()
    assert not np.array_equal(first, batches[0][0])  # the next epoch starts from another draw
    assert len(TrainBatches(x, y, 16, seed=0)) == 4


@pytest.mark.slow
def test_an_unregularized_network_trains_without_augmentation_and_dropout_and_says_so():
    x, y = pattern_images(16, seed=3)
    config = TrainingSection(epochs=1, batch_size=16, learning_rate=1e-4, unregularized=("SongNet",),
                             input_size={"SongNet": SIZE})
    run = train_run("SongNet", x, y, config=config, seed=0)
    assert run.info["regularized"] is False
    assert not {"augment", "dropout"} & {layer.name.rstrip("_0123456789") for layer in run.model.layers}
    assert train_run("SongNet", x, y, config=dataclasses.replace(config, unregularized=()), seed=0).info["regularized"]


@pytest.mark.slow
def test_a_network_run_eagerly_trains_to_what_its_traced_steps_give_and_says_so():
    # run_eagerly changes how the steps run (no tracing), not what they compute.
    x, y = pattern_images(32, seed=6)
    config = TrainingSection(epochs=2, batch_size=16, learning_rate=1e-4, run_eagerly=("SongNet",),
                             unregularized=("SongNet",), input_size={"SongNet": SIZE})
    eager = train_run("SongNet", x, y, config=config, seed=0)
    assert eager.info["eager"] is True and eager.model.run_eagerly
    traced = train_run("SongNet", x, y, config=dataclasses.replace(config, run_eagerly=()), seed=0)
    assert traced.info["eager"] is False and not traced.model.run_eagerly
    np.testing.assert_allclose(predict_proba(eager.model, x), predict_proba(traced.model, x), atol=1e-4)


def test_bad_arrays_are_refused():
    x, y = pattern_images(8, seed=0)
    with pytest.raises(ValueError, match="labels must be 0"):
        train_run("WeiNet", x, y + 1, config=CONFIG)
    with pytest.raises(ValueError, match=r"\(N, 32, 32, 3\)"):
        train_run("WeiNet", x[:, :16], y, config=CONFIG)
