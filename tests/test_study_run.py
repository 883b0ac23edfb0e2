"""Real studies, tiny: selection never reads test data, resume after a real SIGINT trains nothing
twice (and the plan does not depend on --jobs), and the report renders in headless Chromium."""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tomli_w

from clrbench.data import load as data
from clrbench.study.config import StudyConfig
from clrbench.study.presets import preset
from clrbench.study.protocol import Runner, run_study
from clrbench.study.state import read_state

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def tiny(zero_budget: bool = True) -> dict:
    """Two families, two trials each, 1 epoch of 1,000 images, a 2,000-image validation split."""
    raw = preset("quick", epochs=1)
    raw["experiment"] |= {"name": "tiny", "train_size": 1000}
    raw["family"] = [f for f in raw["family"] if f["label"] in ("constant", "clr-iter")]
    raw["study"] = {"budget": 2, "seeds": 1, "validation_size": 2000, "sensitivity_seeds": 1}
    raw["study"] |= {"octaves": [-1, 0], "zero_budget": zero_budget, "lr_find_seeds": 1}
    raw["study"] |= {"lr_find_steps": 20, "bootstrap": 200, "confirm_top": 1, "confirm_seeds": 1}
    return raw


def planned_runs(state: dict) -> int:
    """The runs every study's phases planned (lr-find's sweep is no run of the store)."""
    return sum(p.get("runs", 0) for s in state.studies for p in s.phases.values())


def garbage_test_labels(mnist_dir: Path, folder: Path) -> Path:
    """A copy of MNIST whose test labels are all wrong ((y + 1) mod 10)."""
    folder.mkdir()
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte"):
        (folder / f"{name}.gz").symlink_to(mnist_dir / f"{name}.gz")
    payload = bytearray(gzip.decompress((mnist_dir / "t10k-labels-idx1-ubyte.gz").read_bytes()))
    labels = np.frombuffer(bytes(payload[8:]), dtype=np.uint8)
    payload[8:] = ((labels + 1) % 10).astype(np.uint8).tobytes()
    (folder / "t10k-labels-idx1-ubyte").write_bytes(bytes(payload))
    return folder


def _evaluation_accuracies(study: Path, phase: str) -> dict[str, list[float]]:
    """run id -> per-epoch accuracy on the run's evaluation set (validation or test)."""

    values = {}
    for record in (study / phase / "runs").glob("*/epochs.parquet"):
        values[record.parent.name] = pd.read_parquet(record)["test_accuracy"].tolist()
    return values


@pytest.fixture(scope="module")
def studies(tmp_path_factory, mnist_dir):
    """The same tiny study on real MNIST and on MNIST with garbage test labels (in-process,
    --jobs 1, so the registry without the test-label checksum applies to the training too)."""
    root = tmp_path_factory.mktemp("studies")
    config = StudyConfig.from_dict(tiny())
    run_study(config, root / "real", Runner(jobs=1, data_dir=str(mnist_dir)))
    garbage = garbage_test_labels(mnist_dir, root / "garbage-data")
    spec = data.DATASETS["mnist"]
    checksums = {k: v for k, v in spec.payload_md5.items() if k != data.TEST_LABELS}
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(data.DATASETS, "mnist", replace(spec, payload_md5=checksums))
        data._read_files_cached.cache_clear()
        run_study(config, root / "garbage", Runner(jobs=1, data_dir=str(garbage)))
    data._read_files_cached.cache_clear()
    return root / "real", root / "garbage"


def test_selection_never_reads_test_data(studies):
    real, garbage = studies
    real_state, garbage_state = read_state(real), read_state(garbage)
    # every choice is the same, bit for bit: trials, winners, sensitivity, lr-find bounds
    assert real_state.studies[0].winners == garbage_state.studies[0].winners
    assert real_state.studies[0].check == garbage_state.studies[0].check
    assert real_state.lr_find == garbage_state.lr_find
    for phase in ("trials", "confirm", "sensitivity"):
        values = _evaluation_accuracies(real, phase)
        assert values and values == _evaluation_accuracies(garbage, phase)
    # ...while the test labels did reach what reads the test set: the final runs
    real_final, garbage_final = (_evaluation_accuracies(s, "final") for s in studies)
    assert real_final.keys() == garbage_final.keys()
    for run, accuracies in real_final.items():  # wrong labels: near 0, far below the real score
        assert garbage_final[run][-1] < min(0.2, accuracies[-1] - 0.15), run


def test_runs_record_their_split_and_evaluation_set(studies):
    real, _ = studies
    state = read_state(real)
    for phase, evaluated_on in (("trials", "validation"), ("final", "test")):
        for path in (real / phase / "runs").glob("*/run.json"):
            record = json.loads(path.read_text())
            assert record["config"]["validation_size"] == 2000
            assert record["config"].get("evaluate_on", "test") == evaluated_on
            assert record["provenance"]["evaluated_on"] == evaluated_on
            assert record["provenance"]["split_sha256"] == state.split["validation_sha256"]
            expected = 2000 if evaluated_on == "validation" else 10_000
            assert record["provenance"]["test_examples"] == expected


def _complete(study: Path) -> dict[str, str]:
    """run id -> run.json text of every complete run of the study."""
    # not a run folder being written right now (temporary, ".<id>.tmp-...", until its rename)
    runs = study.glob("*/runs/*/run.json")
    return {p.parent.name: p.read_text() for p in runs if not p.parent.name.startswith(".")}


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "clrbench", "study", *args]


def test_resume_after_sigint_trains_nothing_twice(tmp_path, mnist_dir):
    config = tmp_path / "tiny.toml"
    config.write_text(tomli_w.dumps(tiny(zero_budget=False)))
    out = tmp_path / "study"
    env = os.environ | {"PYTHONPATH": str(REPO), "CLRBENCH_DATA_DIR": str(mnist_dir)}
    args = ["--config", str(config), "--out", str(out), "--quiet", "--no-report"]
    process = subprocess.Popen(
        _cli(*args, "--jobs", "2"),
        env=env,
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.time() + 300
        while len(_complete(out)) < 2 and process.poll() is None and time.time() < deadline:
            time.sleep(0.2)
        assert process.poll() is None, "the study finished before it could be interrupted"
        os.killpg(process.pid, signal.SIGINT)  # Ctrl-C: the whole foreground group
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 130, stderr
    before, planned = _complete(out), read_state(out).studies[0].trials
    assert 2 <= len(before) < 4 + 2 + 2 * 2 + 2  # interrupted: not every run is there
    resumed = subprocess.run(_cli(*args, "--jobs", "1"), env=env, capture_output=True, text=True,
                             timeout=600)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    after, state = _complete(out), read_state(out)
    # trials, confirmation, sensitivity, (re-checks), final
    assert len(after) == planned_runs(state) >= 4 + 2 + 2 * 2 + 2
    assert {run: after[run] for run in before} == before  # no complete run was retrained
    counts = re.search(r"(\d+) runs trained, (\d+) already complete", resumed.stderr)
    assert counts and (int(counts[1]), int(counts[2])) == (len(after) - len(before), len(before))
    assert state.studies[0].trials == planned  # the same plan with --jobs 1 as with --jobs 2


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed")
def test_study_report_renders_in_headless_chromium(studies, tmp_path):
    from PIL import Image

    from clrbench.cli.main import main

    real, _ = studies
    assert main(["report", str(real), "--out", str(tmp_path / "report")]) == 0
    html, markdown = tmp_path / "report/report.html", (tmp_path / "report/report.md").read_text()
    for heading in ("Winners", "Tuning effort", "Sensitivity", "Final comparison on test",
                    "Zero-budget arm", "Every trial", "Protocol"):  # fmt: skip
        assert heading in markdown and heading in html.read_text()
    for link in re.findall(r"\]\((figures/[^)]+)\)", markdown):
        assert (tmp_path / "report" / link).stat().st_size > 1000
    flags = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--window-size=1280,4000"]  # fmt: skip
    probe = tmp_path / "probe.html"
    probe.write_text(html.read_text().replace("</body>", PROBE))
    with tempfile.TemporaryDirectory() as profile:
        dom = subprocess.run([*flags, f"--user-data-dir={profile}", "--virtual-time-budget=5000",
                              "--dump-dom", probe.as_uri()], capture_output=True, text=True,
                             timeout=120).stdout  # fmt: skip
    widths = re.search(r'data-images="([^"]*)"', dom)
    assert widths and len(widths.group(1).split(",")) >= 5
    assert all(int(w) > 0 for w in widths.group(1).split(",")), widths.group(1)
    shot = tmp_path / "shot.png"
    with tempfile.TemporaryDirectory() as profile:
        command = [*flags, f"--user-data-dir={profile}", f"--screenshot={shot}", html.as_uri()]
        subprocess.run(command, capture_output=True, timeout=120)
    colours = Image.open(shot).convert("RGB").getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 200


PROBE = """<script>addEventListener("load", () => document.body.setAttribute(
  "data-images", [...document.images].map(i => i.complete ? i.naturalWidth : -1).join(",")));
</script></body>"""


def test_two_studies_end_to_end_report_every_studys_winners_and_the_median(tmp_path, mnist_dir):
    """``study --studies 2`` on the tiny study (the quick preset shrunk to about 2 minutes on 2
    cores): study 1 in its own folder with its own seeds, the headline over both studies, and
    summary.json agreeing with the state."""
    config = tmp_path / "tiny.toml"
    raw = tiny()
    raw["study"] |= {"sensitivity_seeds": 2}
    config.write_text(tomli_w.dumps(raw))
    out = tmp_path / "study"
    env = os.environ | {"PYTHONPATH": str(REPO), "CLRBENCH_DATA_DIR": str(mnist_dir)}
    args = ["--config", str(config), "--studies", "2", "--out", str(out), "--quiet", "--jobs", "2"]
    done = subprocess.run(_cli(*args), env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    state = read_state(out)
    assert [s.folder for s in state.studies] == [".", "study-1"]
    assert state.studies[1].seeds["tuning"] == [11000]
    assert (out / "study-1/final/runs").is_dir() and not (out / "study-1/lr-find").exists()
    markdown = (out / "report/report.md").read_text()
    assert markdown.count("> Over 2 studies (each an independent tuning") == 1
    assert "## Across studies: against the tuned constant" in markdown
    assert "## Every study's winners on test" in markdown and "## Confirmed winners" in markdown
    summary = json.loads((out / "report/summary.json").read_text())
    assert summary["studies"] == summary["studies_done"] == 2
    for study in (0, 1):
        winners = {f: w["label"] for f, w in state.studies[study].winners.items()}
        assert {f: w["label"] for f, w in summary["per_study"][study]["winners"].items()} == winners
        for family, label in winners.items():
            assert f"| {study} | {family} | {label} |" in markdown
    headline = summary["headline"]["clr-iter"]
    assert headline["studies"] == 2 and headline["low"] <= headline["median"] <= headline["high"]
    # one final seed per study: the primary test is the t over the 2 studies' differences
    assert headline["seeds_design"] == "same final seeds in every study" and headline["df"] == 1
    assert headline["verdict"].startswith(headline["outcome"])
    estimate = f"{headline['estimate'] * 100:+.2f}".replace("-", "−")
    assert f"| clr-iter | 2 | {estimate} |" in markdown

    # the report re-renders from its own compact data alone, the study folder gone
    import clrbench

    kept = tmp_path / "kept-report"
    shutil.copytree(out / "report", kept)
    shutil.rmtree(out)
    figures = {p.name: p.read_bytes() for p in (kept / "figures").iterdir()}
    clrbench.report(kept)
    again = (kept / "report.md").read_text()
    assert "learning-rate.png" in figures
    assert _stable(again) == _stable(markdown)
    assert json.loads((kept / "summary.json").read_text()) == summary
    tuning = pd.read_parquet(kept / "data/trials/data/epochs.parquet")  # last epochs only
    assert tuning.groupby("run_id", observed=True).size().eq(1).all()
    assert (kept / "data/study-1/final/data/runs.parquet").is_file()
    assert figures["learning-rate.png"] == (kept / "figures/learning-rate.png").read_bytes()

    # a copy of the compact data is a study folder that a third study extends: studies 0 and 1
    # are kept, not retrained, and read back to the same numbers
    extended = tmp_path / "extended"
    shutil.copytree(kept / "data", extended)
    args = ["--config", str(config), "--studies", "3", "--out", str(extended), "--jobs", "2"]
    done = subprocess.run(_cli(*args), env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    kept_phases = len(state.studies[0].phases) + len(state.studies[1].phases)
    assert done.stderr.count("kept from the compact data") == kept_phases, done.stderr
    trained = sum(p["runs"] for p in read_state(extended).studies[2].phases.values())
    assert f"{trained} runs trained, " in " ".join(done.stderr.split()), done.stderr
    longer = json.loads((extended / "report/summary.json").read_text())
    assert longer["studies_done"] == 3 and longer["per_study"][:2] == summary["per_study"]
    assert (extended / "report/figures/learning-rate.png").read_bytes() == figures[
        "learning-rate.png"
    ]

    # with another configuration it refuses in one line and writes nothing into the copy
    other = tmp_path / "other"
    shutil.copytree(kept / "data", other)
    before = {p: p.read_bytes() for p in other.rglob("*") if p.is_file()}
    raw["study"] |= {"budget": 3}
    config.write_text(tomli_w.dumps(raw))
    args = ["--config", str(config), "--studies", "3", "--out", str(other), "--quiet"]
    done = subprocess.run(_cli(*args), env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "study.budget differs" in done.stderr, done.stderr
    assert {p: p.read_bytes() for p in before} == before  # nothing overwritten
    # the same configuration, stacked: other run ids than the kept trials', refused alike
    raw["study"] |= {"budget": 2}
    config.write_text(tomli_w.dumps(raw))
    done = subprocess.run([*_cli(*args), "--stack"], env=env, capture_output=True, text=True)
    assert done.returncode == 2 and "holds other runs than this phase plans" in done.stderr
    assert {p: p.read_bytes() for p in before} == before


def _stable(markdown: str) -> str:
    """A report without the lines that name when and with what it was rendered."""
    return "\n".join(
        line for line in markdown.splitlines()
        if not line.startswith(("| report generated |", "| report made with |"))
    )  # fmt: skip


def test_until_decided_stops_once_every_family_is_decided(tmp_path, mnist_dir):
    """``study --until-decided --max-studies 4 --fresh-seeds`` with a margin no tiny study can
    miss (50 pp): the first look, after 3 studies, decides every family equivalent, so the 4th
    study never runs; each study re-ran its winners on its own final seeds."""
    config = tmp_path / "tiny.toml"
    raw = tiny(zero_budget=False)
    raw["study"] |= {"seeds": 2, "octaves": [0], "confirm_top": 0}
    config.write_text(tomli_w.dumps(raw))
    out = tmp_path / "study"
    env = os.environ | {"PYTHONPATH": str(REPO), "CLRBENCH_DATA_DIR": str(mnist_dir)}
    args = ["--config", str(config), "--until-decided", "--max-studies", "4", "--fresh-seeds"]
    args += ["--margin", "50", "--out", str(out), "--quiet", "--jobs", "2"]
    done = subprocess.run(_cli(*args), env=env, capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stderr
    state = read_state(out)
    assert [s.folder for s in state.studies] == [".", "study-1", "study-2"]
    assert not (out / "study-3").exists()
    assert [s.seeds["final"] for s in state.studies] == [
        [0, 1],
        [10000, 10001],
        [20000, 20001],
    ]
    summary = json.loads((out / "report/summary.json").read_text())
    headline = summary["headline"]["clr-iter"]
    assert headline["outcome"] == "equivalent" and headline["decided_at"] == 3
    assert headline["seeds_design"] == "final seeds drawn per study"
    assert summary["margin"] == {"margin_pp": 50.0, "margin_source": "set by --margin"}
    assert summary["protocol"]["until_decided"] is True
