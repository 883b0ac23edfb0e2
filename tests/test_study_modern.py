"""The schedules of now in the study (issue 33): their families, spaces from their parameters'
roles (rates log-uniform and scaled by the multipliers, lengths shares of the run), valid at
every corner of the space for the reference and the quick study."""

from __future__ import annotations

import pytest

from clrbench.errors import ConfigError
from clrbench.schedules import roles
from clrbench.study.config import StudyConfig
from clrbench.study.presets import (
    OPTIONAL,
    QUICK,
    REFERENCE,
    STANDARD,
    all_families,
    study_preset,
)
from clrbench.study.space import parse_family, scale_rates

MODERN = ("cosine", "linear-decay", "wsd", "cyclic-cosine")


@pytest.mark.parametrize(("epochs", "size", "protocol"), [(25, None, REFERENCE), (3, 3000, QUICK)])
def test_every_corner_of_the_modern_spaces_builds(epochs, size, protocol):
    """StudyConfig builds every family's corners when it is made (an invalid one raises)."""
    raw = study_preset("modern", epochs, size, protocol, families=STANDARD + OPTIONAL)
    config = StudyConfig.from_dict(raw)
    assert [f.label for f in config.families][-4:] == list(MODERN)
    spe, total = config.lengths()
    for family in config.families[-4:]:
        low = family.resolve([0.0] * len(family.ranged), spe, total)
        high = family.resolve([0.999999] * len(family.ranged), spe, total)
        assert low["total_steps"] == high["total_steps"] == total  # the whole run
        assert low["peak_lr"] == 0.03 and high["peak_lr"] == pytest.approx(1.0, rel=1e-4)
        assert 1 <= low["warmup_steps"] <= high["warmup_steps"] <= round(0.1 * total)
    wsd = config.families[-2].resolve([0.5, 0.5, 0.5], spe, total)
    assert wsd["cooldown"] == "1-sqrt" and wsd["decay_steps"] == round((0.1 + 0.5 * 0.4) * total)


def test_the_spaces_come_from_the_roles():
    """Rates get a log range; step counts a share of the run; nothing else is scaled."""
    for family in all_families(25):
        if family["label"] not in MODERN:
            continue
        declared = roles(family["name"])
        for knob, space in family["space"].items():
            if declared[knob] == "rate" and isinstance(space, dict):
                assert "log" in space
            if declared[knob] in ("warmup", "cooldown", "length"):
                assert space["unit"] == "run"
    trial = {"peak_lr": 0.2, "warmup_steps": 10, "total_steps": 200, "end_lr": 0.0}
    assert scale_rates("warmup_cosine", trial, 2.0) == trial | {"peak_lr": 0.4}


def test_a_fixed_choice_round_trips_through_toml():
    family = parse_family(all_families(25)[-2], 0)
    assert family.to_toml()["space"]["cooldown"] == "1-sqrt"
    assert parse_family(family.to_toml(), 0) == family


def test_a_rate_in_run_units_is_refused():
    raw = {"label": "c", "name": "warmup_cosine",
           "space": {"peak_lr": {"uniform": [0.1, 0.2], "unit": "run"}, "warmup_steps": 1,
                     "total_steps": 100}}  # fmt: skip
    with pytest.raises(ConfigError, match="unit = 'run' is for counts of iterations"):
        parse_family(raw, 0)


def test_a_string_for_a_number_is_one_clear_error():
    space = {"max_lr": {"log": [0.1, 1.0]}, "base_lr": "fast", "step_size": 100}
    raw = {"label": "c", "name": "triangular", "space": space}
    with pytest.raises(ConfigError, match="expected a number or a table, got 'fast'"):
        parse_family(raw, 0)


def test_the_study_command_takes_the_modern_families():
    from clrbench.study.resolve import resolve_study

    families = "constant,cosine,linear-decay,wsd,cyclic-cosine"
    config = resolve_study(preset="quick", families=families)
    assert [f.label for f in config.families] == families.split(",")
