"""The benchmarks' step clock: which steps its window spans, and how it stops the loop it times."""

import math

import pytest
import torch

from benchmarks.timing import StepClock, WindowDone, time_steps
from benchmarks.trainers import Trainer, encoder_loss, seeded, timed_train, train_config

CPU = torch.device("cpu")


def test_the_window_spans_first_to_last_and_ignores_later_steps():
    clock = StepClock(CPU, first=2, last=5)
    for step in range(1, 9):
        clock(step)
    assert clock.end == 5 and clock.steps == 3
    assert sorted(clock.marks) == [1, 2, 5]  # step 1 before the window (first_step_s), then both ends only
    assert clock.ms_per_step() == pytest.approx(1000 * (clock.marks[5] - clock.marks[2]) / 3)
    assert clock.first_step_s == clock.marks[1] - clock.created >= 0


def test_a_spent_time_limit_closes_the_window_early_and_stop_raises_there():
    clock = StepClock(CPU, first=3, last=100, seconds=0.0, stop=True)
    for step in (1, 2, 3):
        clock(step)
    with pytest.raises(WindowDone):
        clock(4)
    assert clock.end == 4 and clock.steps == 1 and math.isfinite(clock.ms_per_step())


def test_time_steps_calls_the_step_for_warmup_and_timed_steps():
    calls = []
    assert time_steps(lambda: calls.append(1), CPU, warmup=2, steps=3) >= 0
    assert len(calls) == 5


def test_a_stopping_clock_ends_train_before_its_final_bookkeeping():
    images = torch.randint(0, 256, (32, 1, 8, 8), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    build = seeded("encoder", "mlp", data_shape=[1, 8, 8], latent_dim=4)
    trainer = Trainer("tiny", "encoder", "mlp", 4, build, encoder_loss, [images], batch=8)
    clock = StepClock(CPU, first=2, last=50, seconds=0.0, stop=True)
    model = timed_train(trainer, train_config(trainer, 50, device="cpu", log_every=50, checkpoint_every=50), clock)
    assert clock.end == 3
    assert model.training  # `train` puts the model in eval mode only when it runs to its end
