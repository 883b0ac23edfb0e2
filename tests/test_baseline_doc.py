"""Baseline documents: format versions, old documents, one-line refusals."""

from __future__ import annotations

import json

import pytest
from conftest import REPO

from clrbench.cli.main import main
from clrbench.errors import ResultsError
from clrbench.gate.baseline import FORMAT, READABLE_FORMATS, config_hash, read_baseline

FORMAT_1 = REPO / "tests/data/baseline-ci-format1.json"  # reports/baseline-ci.json as of 3c2fff4


def test_format_1_baseline_loads_with_its_numbers():
    raw = json.loads(FORMAT_1.read_text())
    assert raw["format"] == "clrbench-baseline/1" and FORMAT == "clrbench-baseline/2"
    document = read_baseline(FORMAT_1)
    assert document["metrics"] == raw["metrics"]
    assert document["config_hash"] == config_hash(raw["experiment"])


@pytest.mark.parametrize("format_", ["clrbench-baseline/0", "clrbench-baseline/3", 7])
def test_unknown_format_is_one_line_saying_how_to_regenerate(format_, tmp_path, capsys):
    document = json.loads(FORMAT_1.read_text()) | {"format": format_}
    path = tmp_path / "baseline.json"
    path.write_text(json.dumps(document))
    with pytest.raises(ResultsError, match="is not one this clrbench reads"):
        read_baseline(path)
    code = main(["check", str(tmp_path), "--baseline", str(path)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert ", ".join(READABLE_FORMATS) in err
    assert f"python -m clrbench baseline results/ci -o {path} --force" in err
