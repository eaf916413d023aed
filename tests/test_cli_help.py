"""``--help`` lists the valid values of every choice, taken from the configuration types (so a
new value cannot be missing from the help)."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from privrec.cli.app import app
from privrec.config_types import choices
from privrec.data.synthetic import SyntheticConfig
from privrec.defences.adversarial import AdversarySpec
from privrec.defences.dependence import DependenceSpec
from privrec.training.config import TrainConfig

runner = CliRunner()

CHOICES = [
    ("--model", TrainConfig, "model"),
    ("--loss", TrainConfig, "loss"),
    ("--optimizer", TrainConfig, "optimizer"),
    ("--selection", TrainConfig, "selection"),
    ("--adv-head", AdversarySpec, "head"),
    ("--adv-schedule", AdversarySpec, "schedule"),
    ("--adv-objective", AdversarySpec, "objective"),
    ("--dep-schedule", DependenceSpec, "schedule"),
    ("--syn-mode", SyntheticConfig, "mode"),
]


def _option_help(text: str, flag: str) -> str:
    flat = re.sub(r"[\s│╭╮╰╯─]+", " ", text)
    start = flat.index(flag)
    nxt = re.search(r" --[a-z]", flat[start + len(flag) :])
    return flat[start : start + len(flag) + (nxt.start() if nxt else len(flat))]


@pytest.mark.parametrize(("flag", "cls", "field"), CHOICES)
def test_train_help_lists_every_choice(flag, cls, field):
    res = runner.invoke(app, ["train", "--help"], env={"COLUMNS": "200"})
    assert res.exit_code == 0
    text = _option_help(res.output, flag)
    for value in choices(cls, field):
        assert value in text, f"{flag} help does not list {value!r}: {text}"


@pytest.mark.parametrize(("flag", "cls", "field"), CHOICES[:4])
def test_a_wrong_choice_is_one_line_naming_the_option(flag, cls, field):
    res = runner.invoke(app, ["train", flag, "nonsense", "-q"])
    assert res.exit_code == 2 and flag in res.output and "nonsense" in res.output
    assert "Traceback" not in res.output
