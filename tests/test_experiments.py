"""The experiments' shared readings (gpe_pipeline.experiments)."""

import math

import numpy as np
import pandas as pd
import pytest

from gpe_pipeline.experiments import (
    below,
    diverged_step,
    encoder_stop,
    evaluations,
    grid_values,
    iteration_bounds,
    ratio_bounds,
)
from gpe_pipeline.params import ParameterError


def test_grid_values_reads_every_slot_in_order():
    rates = grid_values({"high": 1e-1, "low": 1e-3, "mid": 1e-2}, ("low", "mid", "high"), "e.rates", increasing=True)
    assert list(rates.items()) == [("low", 1e-3), ("mid", 1e-2), ("high", 1e-1)]
    assert grid_values({"high": 2, "low": 1}, ("high", "low"), "e.levels", increasing=False) == {"high": 2.0, "low": 1.0}


@pytest.mark.parametrize(
    "values",
    [
        {"low": 1e-3, "mid": 1e-2},  # a slot missing
        {"low": 1e-3, "mid": 1e-2, "high": 1e-1, "top": 1.0},  # an unknown slot
        {"low": 1e-3, "mid": 1e-1, "high": 1e-2},  # out of order
        {"low": 1e-3, "mid": 1e-3, "high": 1e-2},  # not strictly
        {"low": 0, "mid": 1e-2, "high": 1e-1},
        {"low": "1e-3", "mid": 1e-2, "high": 1e-1},
        [1e-3, 1e-2, 1e-1],
        None,
    ],
)
def test_grid_values_refuses_a_bad_grid_naming_the_key(values):
    with pytest.raises(ParameterError, match=r"^e\.rates must map \['low', 'mid', 'high'\] to positive numbers, increasing"):
        grid_values(values, ("low", "mid", "high"), "e.rates", increasing=True)


def test_evaluations_keep_measured_finite_rows_before_a_step():
    history = pd.DataFrame({"step": [5, 10, 15, 20, 25], "a": [np.nan, 1.0, np.inf, 3.0, 4.0], "b": [0.5, 2.0, 2.0, np.nan, 5.0]})
    assert evaluations(history, "a", "b")["step"].tolist() == [10, 25]
    assert evaluations(history, "a", before_step=25)["a"].tolist() == [1.0, 3.0]
    assert evaluations(history, "missing").empty and list(evaluations(history, "missing").columns) == ["step", "missing"]


def test_diverged_step_and_encoder_stop():
    history = pd.DataFrame({"step": [50, 100], "validation_gme": [0.3, 0.1], "diverged_step": [np.nan, 62.0]})
    assert diverged_step(history) == 62 and diverged_step(history.drop(columns="diverged_step")) is None
    assert encoder_stop(history) == {"steps": 100, "gme": 0.1}


def test_iteration_bounds_and_comparisons():
    assert iteration_bounds(300, 4000) == (300, 300) and iteration_bounds(None, 4000) == (4001, math.inf)
    reached, unreached = iteration_bounds(300, 4000), iteration_bounds(None, 4000)
    assert below(reached, unreached) is True and below(unreached, reached) is False
    assert below(unreached, unreached) is None and below(reached, reached) is False
    assert ratio_bounds((600, 600), (300, 300)) == (2.0, 2.0)
    assert ratio_bounds(unreached, reached) == (4001 / 300, math.inf)
    assert ratio_bounds(reached, unreached) == (0.0, 300 / 4001)
    # A ratio known only as > 13.3 is above 5 but cannot be compared with 20.
    assert below((5.0, 5.0), ratio_bounds(unreached, reached)) is True
    assert below((20.0, 20.0), ratio_bounds(unreached, reached)) is None
