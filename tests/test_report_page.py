"""The page writer (``clrbench.reporting.page``) both reports go through: atomic files on a real
file system, one base template and one macro file, HTML escaped and Markdown not."""

from __future__ import annotations

import contextlib
import re
import resource
import shutil
from pathlib import Path

import pytest
import report_data
from conftest import load_synthetic

from clrbench.errors import ClrbenchError
from clrbench.reporting import page, render
from clrbench.store import atomic
from clrbench.store.results import load_results
from clrbench.study import report as study


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    folder = tmp_path_factory.mktemp("results")
    load_synthetic().write_synthetic_results(
        folder, ("constant", "clr-iter"), seeds=3, epochs=2, train_size=1280
    )
    return load_results(folder)


@pytest.fixture(scope="module")
def study_analysis(tmp_path_factory):
    parts = report_data.study_parts(tmp_path_factory.mktemp("study") / "final")
    return study.study_analysis(**parts)


def write_document(kind, results, study_analysis, out: Path, templates=page.TEMPLATES):
    """The run report or the study report, written to ``out``."""
    if kind == "run":
        return render.render(results, out, templates=templates)
    return study.write_study(out.parent, study_analysis, out, templates=templates)


@contextlib.contextmanager
def file_size_limit(limit: int):
    """A real RLIMIT_FSIZE for this process: a write past ``limit`` bytes fails (EFBIG; Python
    ignores SIGXFSZ). The old limit is put back afterwards. In-process, so that the documents
    are the fixtures' own; pytest writes its report only after the test, with the limit gone."""
    old = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, old[1]))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, old)


@pytest.mark.slow  # draws every figure of a whole report (seconds each)
@pytest.mark.parametrize("kind", ["run", "study"])
def test_a_write_that_fails_midway_leaves_the_old_report_whole(
    kind, results, study_analysis, tmp_path
):
    out = tmp_path / "report"
    written = write_document(kind, results, study_analysis, out)
    before = {path: path.read_bytes() for path in out.rglob("*") if path.is_file()}
    html = written["html"].stat().st_size
    assert html > 100_000  # the figures are inlined
    with pytest.raises(OSError, match="File too large"), file_size_limit(html // 2):
        write_document(kind, results, study_analysis, out)
    after = {path: path.read_bytes() for path in out.rglob("*") if path.is_file()}
    assert after == before  # not half of report.html: the whole old one
    assert not [path for path in out.rglob("*") if atomic.is_temporary(path)]


@pytest.fixture(scope="module")
def probed_templates(tmp_path_factory) -> Path:
    """A copy of clrbench's templates with a mark in the two base templates and the macros."""
    folder = Path(shutil.copytree(page.TEMPLATES, tmp_path_factory.mktemp("t") / "templates"))
    edits = [
        ("_base.html.j2", '<meta charset="utf-8">', '<meta charset="utf-8"><meta name="probe">'),
        ("_base.md.j2", "{{ subtitle }}", "{{ subtitle }} (base probe)"),
        ("_macros.j2", '<div class="table-wrap"><table>', '<div class="table-wrap probe"><table>'),
        ("_macros.j2", "## {{ table.title }}", "## T: {{ table.title }}"),
    ]
    for name, old, new in edits:
        text = (folder / name).read_text()
        assert old in text, name
        (folder / name).write_text(text.replace(old, new))
    return folder


@pytest.mark.slow  # draws every figure of a whole report (seconds each)
@pytest.mark.parametrize("kind", ["run", "study"])
def test_both_documents_are_made_of_the_one_base_and_the_one_macro_file(
    kind, results, study_analysis, probed_templates, tmp_path
):
    plain = write_document(kind, results, study_analysis, tmp_path / "plain")
    probed = write_document(kind, results, study_analysis, tmp_path / "probed", probed_templates)
    html, markdown = probed["html"].read_text(), probed["md"].read_text()
    assert html.count('<meta name="probe">') == 1
    assert html.count('class="table-wrap probe"') == html.count("<table") >= 5
    tables = markdown.count("\n## T: ")
    assert tables >= 4 and tables == markdown.count("\n|---") - 1  # all but Provenance/Protocol
    assert markdown.splitlines()[2].endswith(" (base probe)")
    # apart from the marks (and the time of rendering), the pages are the same
    unmarked = html.replace('<meta name="probe">', "").replace(" probe", "")
    assert _untimed(unmarked) == _untimed(plain["html"].read_text())
    unmarked = markdown.replace(" (base probe)", "").replace("## T: ", "## ")
    assert _untimed(unmarked) == _untimed(plain["md"].read_text())


def _untimed(page_text: str) -> str:
    return re.sub(r"report generated(</th><td>| \| )[^<|]*", "report generated", page_text)


def test_the_html_macros_escape_and_the_markdown_ones_do_not():
    macros = page.environment().get_template("_macros.j2").module
    table = {"id": "t", "title": "p < 0.001 & more", "headers": ["a|b"], "rows": [["<i>x</i>"]]}
    table |= {"numeric": [False], "note": None}
    html = str(macros.html_table(table, {}))
    assert '<h2 id="t">p &lt; 0.001 &amp; more</h2>' in html
    assert "<td>&lt;i&gt;x&lt;/i&gt;</td>" in html and "<i>" not in html
    markdown = str(macros.md_table(table))
    assert "## p < 0.001 & more" in markdown and "| <i>x</i> |" in markdown
    assert "| a\\|b |" in markdown  # a pipe in a cell is escaped for the table


@pytest.mark.slow  # draws every figure of a whole report (seconds each)
def test_study_pages_escape_what_their_cells_hold(study_analysis, tmp_path):
    # the zero-budget answer holds "Holm p < 0.0001" (a p-value below the shown precision)
    written = study.write_study(tmp_path, study_analysis, tmp_path / "report")
    html, markdown = written["html"].read_text(), written["md"].read_text()
    assert "Holm p &lt; 0.0001" in html and "Holm p < 0.0001" not in html
    assert "Holm p < 0.0001" in markdown and "&lt;" not in markdown


def test_the_palette_gives_each_label_its_colour_in_order():
    colors = page.palette(["a", "b", "c"])
    assert list(colors) == ["a", "b", "c"]
    assert list(page.hex_colors(colors).values()) == [c.lower() for c in page.PALETTE[:3]]
    assert len(set(page.palette([f"s{i}" for i in range(12)]).values())) == 12  # beyond ten


def test_an_output_path_that_is_a_file_is_one_clear_error(tmp_path):
    (tmp_path / "report").write_text("mine")
    with pytest.raises(ClrbenchError, match="exists and is not a folder"):
        page.write_pages(tmp_path / "report", "report", {}, [])
    assert (tmp_path / "report").read_text() == "mine"


def test_number_columns_are_right_aligned_and_text_columns_are_not():
    from clrbench.reporting.tables import aligned

    numbers = ["98.35", "+0.08", "8,911", "1.73×", "89.03 (5)", "2 of 3", "25/25", "∞"]
    numbers += ["+0.00 to +0.15", "97.9 vs 97.8", "3 / 0", "< 0.001", "–"]
    texts = ["constant", "fashion-mnist-mlp vs mnist-mlp", "tested", "lr=0.17", "x1"]
    rows = [[n, t, "–"] for n, t in zip(numbers, texts * 3, strict=False)]
    table = aligned({"headers": ["number", "text", "empty"], "rows": rows})
    assert table["numeric"] == [True, False, False]  # an all-empty column is not a number column
    for text in texts:  # one text cell is enough to left-align its column
        assert aligned({"headers": ["mixed"], "rows": [["98.35"], [text]]})["numeric"] == [False]
