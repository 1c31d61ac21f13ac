"""What a person sees on the command line: one line for a user error, whole progress lines in a log file."""

from __future__ import annotations

import re
import sys

import pytest
from kedro.io import DatasetError

from gpe_pipeline.cli import find_user_error
from gpe_pipeline.core.data import DatasetFilesError
from gpe_pipeline.params import ParameterError

from .conftest import command_line, kedro, make_project_copy

BAD_LEARNING_RATE = "train_encoder.training.lr must be a positive number, got -1: change train_encoder.training.lr"
MISSING_MNIST = "MNIST file not found: expected data/01_raw/MNIST/raw/train-images-idx3-ubyte"
TRACEBACK_MARKS = ("Traceback", "│", "╭", "╰")  # Python's header; rich's frame boxes


def raised(error: BaseException, cause: BaseException | None = None, context: BaseException | None = None) -> BaseException:
    """`error` as if raised `from cause` while handling `context`."""
    error.__cause__, error.__context__ = cause, context
    return error


def test_a_user_error_is_found_through_kedros_wrappers_and_nothing_else_counts():
    parameter = ParameterError("train_encoder.latent_dim must be an integer >= 1")
    assert find_user_error(parameter) is parameter
    missing = DatasetFilesError("MNIST file not found")
    assert find_user_error(raised(DatasetError("Failed while loading data"), cause=missing)) is missing
    assert find_user_error(raised(RuntimeError("wrapped"), context=raised(ValueError("inner"), cause=missing))) is missing
    bug = raised(RuntimeError("a bug"), cause=raised(ValueError("deeper"), context=KeyError("x")))
    assert find_user_error(bug) is None
    looping = RuntimeError("refers to itself")
    assert find_user_error(raised(looping, context=raised(ValueError("back"), context=looping))) is None


def assert_short_error(result, message: str) -> None:
    lines = result.output.strip().splitlines()
    assert result.returncode != 0
    assert not [mark for mark in TRACEBACK_MARKS if mark in result.output], result.output[-3000:]
    assert lines[-2].startswith(f"Error: {message}") and lines[-1] == "(GPE_TRACEBACK=1 shows the traceback)"
    assert len(lines) < 40, "the run's start-up lines and the error, not a traceback of hundreds of lines"


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return make_project_copy(tmp_path_factory.mktemp("cli"))


def test_kedro_run_ends_a_bad_parameter_with_its_message(project):
    result = kedro(project, "run", "--env", "test", "--params", "train_encoder.training.lr=-1", check=False)
    assert_short_error(result, BAD_LEARNING_RATE)


def test_python_m_ends_a_missing_data_file_with_its_message(project):
    result = command_line(
        project, [sys.executable, "-m", "gpe_pipeline", "--env", "test", "--params", "ingest.dataset=mnist"], check=False
    )
    assert_short_error(result, MISSING_MNIST)


def test_the_traceback_switch_shows_the_traceback(project):
    result = kedro(
        project, "run", "--env", "test", "--params", "train_encoder.training.lr=-1", check=False, env={"GPE_TRACEBACK": "1"}
    )
    assert result.returncode != 0
    assert "Traceback (most recent call last)" in result.output and BAD_LEARNING_RATE in result.output
    assert "ParameterError" in result.output


def test_progress_lines_stay_whole_in_a_log_file(trained_project):
    output = (trained_project / "kedro_run_output.txt").read_text()  # a real run's output, captured as in CI
    progress = [line for line in output.splitlines() if "train_encoder step" in line]
    whole = re.compile(r"train_encoder step \d+/60 \| loss \S+( \| validation_gme \S+)? \| [\d.]+ it/s \| ETA \S+$")
    assert len(progress) == 4, output  # log_every 20 and eval_every 30 of 60 steps: 20, 30, 40, 60
    assert all(whole.search(line) for line in progress), progress
