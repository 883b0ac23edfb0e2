"""The documentation cannot drift (fast tier): the README and the pages under docs/.

- the site builds with MkDocs in strict mode (every internal link, anchor and nav entry);
- every ```python block runs, page by page in one namespace, where ``results/default`` is a
  synthetic results folder written through the real store (no training);
- every ``python -m clrbench …`` / ``clrbench …`` line, in code blocks and inline code, is parsed
  by the real parser, and every flag it names is one of that command's own options;
- the generated references equal what docs/gen_reference.py writes today;
- the README's headline numbers are the committed reports' (reports/workloads/across.json,
  reports/study*/summary.json), its links resolve, it stays short, and its install and test
  commands are the ones CI (.ci/run) runs.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import json
import re
import shlex
from pathlib import Path
from statistics import mean

import pytest
from conftest import load_synthetic

from clrbench.cli.main import build_parser
from clrbench.text import points

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
DOCS = REPO / "docs"
GENERATED = {"reference/cli.md", "reference/configuration.md", "reference/code-map.md"}
PAGES = [README, *sorted(DOCS.rglob("*.md"))]
SNIPPET = re.compile(r'^[ \t]*--8<-- "([^"]+)"[ \t]*$', re.M)
FENCE = re.compile(
    r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>[^\n`]*)\n"
    r"(?P<body>.*?)^(?P=indent)(?P=fence)[ \t]*$",
    re.M | re.S,
)
INLINE = re.compile(r"(?<!`)`([^`]+)`(?!`)")
# a command at the start of a line (after a prompt or env assignments) or after run:, &&, ;, |
COMMAND = re.compile(
    r"(?:^\s*(?:\$\s+)?(?:[A-Za-z_]\w*=\S*\s+)*|(?:run:|&&|;|\||\()\s*)"
    r"(?P<command>(?:python -m clrbench|clrbench)(?=\s|$).*)"
)


def load_generator():
    spec = importlib.util.spec_from_file_location("gen_reference", DOCS / "gen_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def page_text(path: Path) -> str:
    """The page as MkDocs renders it: ``--8<-- "file"`` snippets replaced by the file."""
    text = path.read_text(encoding="utf-8")
    return SNIPPET.sub(lambda m: (REPO / m.group(1)).read_text(encoding="utf-8"), text)


def blocks(text: str) -> list[tuple[str, str]]:
    """``(language, body)`` of every fenced code block."""
    return [(m.group("info").strip().split(" ")[0], m.group("body")) for m in FENCE.finditer(text)]


def label(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


# --- the site -------------------------------------------------------------------------------


def build_site(tmp_path: Path, monkeypatch, api: bool) -> Path:
    """``mkdocs build --strict`` in this process, into ``tmp_path/site``. Without ``api`` the
    mkdocstrings plugin is left out (griffe starts ``git``: a process) and every other page,
    link, anchor and nav entry is built and checked as in the full build."""
    from mkdocs.commands.build import build
    from mkdocs.config import load_config

    monkeypatch.chdir(REPO)  # the snippets' base path
    monkeypatch.setenv("NO_MKDOCS_2_WARNING", "1")
    config_file = REPO / "mkdocs.yml"
    if not api:
        config_file = tmp_path / "mkdocs.yml"
        config_file.write_text(
            f"INHERIT: {REPO / 'mkdocs.yml'}\ndocs_dir: {DOCS}\n"
            f"hooks: [{DOCS / 'hooks.py'}]\nplugins: [search]\n"
        )
    site = tmp_path / "site"
    build(load_config(str(config_file), site_dir=str(site), strict=True))  # a warning: Abort
    return site


def test_the_site_builds_in_strict_mode(tmp_path, monkeypatch):
    site = build_site(tmp_path, monkeypatch, api=False)
    assert (site / "guides/study/index.html").is_file()
    assert (site / "reports/workloads/figures/differences.png").is_file()


@pytest.mark.slow
def test_the_site_builds_in_strict_mode_with_the_api_pages(tmp_path, monkeypatch):
    site = build_site(tmp_path, monkeypatch, api=True)
    assert (site / "reference/api/index.html").read_text().count("doc-heading") >= 10


def test_the_nav_tolerates_missing_pages_and_appends_new_guides(tmp_path):
    spec = importlib.util.spec_from_file_location("hooks", DOCS / "hooks.py")
    hooks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hooks)
    (tmp_path / "guides").mkdir()
    (tmp_path / "index.md").write_text("# Home\n")
    (tmp_path / "guides/kept.md").write_text("# Kept\n")
    (tmp_path / "guides/new-one.md").write_text("# A new guide\n")
    nav = [
        {"Home": "index.md"},
        {"Guides": [{"Kept": "guides/kept.md"}, {"Gone": "guides/gone.md"}]},
    ]
    assert hooks.tolerant_nav(nav, tmp_path) == [
        {"Home": "index.md"},
        {"Guides": [{"Kept": "guides/kept.md"}, {"A new guide": "guides/new-one.md"}]},
    ]


# --- Python examples --------------------------------------------------------------------------


PYTHON_PAGES = [
    p for p in PAGES if any(lang in ("python", "py") for lang, _ in blocks(page_text(p)))
]


@pytest.mark.parametrize("page", PYTHON_PAGES, ids=label)
def test_every_python_example_runs(page, tmp_path, monkeypatch):
    """The page's ```python blocks, in order, in one namespace, in a folder whose
    ``results/default`` is a small synthetic results folder; examples/ on the path."""
    load_synthetic().write_synthetic_results(
        tmp_path / "results/default", ("constant", "clr-iter"), seeds=2, epochs=2, train_size=6000
    )
    monkeypatch.chdir(tmp_path)
    for example in ("warm_schedules", "mnist_cnn"):
        monkeypatch.syspath_prepend(str(REPO / "examples" / example))
    namespace: dict = {"__name__": "__docs__"}
    for number, (lang, body) in enumerate(blocks(page_text(page)), start=1):
        if lang in ("python", "py"):
            code = compile(body, f"{label(page)}, block {number}", "exec")
            exec(code, namespace)  # noqa: S102 (the docs' own examples)


# --- command lines ----------------------------------------------------------------------------


SHELL = ("bash", "sh", "shell", "console", "yaml", "yml")  # every clrbench line is a command


def names_a_command(command: str) -> bool:
    """In a text block (a file layout, a diagram), a line is a command only if a subcommand or
    an option follows the program."""
    words = command.split()
    rest = words[3:] if words[:3] == ["python", "-m", "clrbench"] else words[1:]
    commands = load_generator().subcommands(build_parser())
    return not rest or rest[0].startswith("-") or rest[0] in commands


def command_lines(text: str) -> list[str]:
    """Every ``python -m clrbench …`` / ``clrbench …`` command: in code blocks (a command may
    follow ``run:``, ``&&`` or env assignments; ``\\`` continues a line), and inline code that
    starts with one."""
    found = []
    for lang, body in blocks(text):
        if lang in ("python", "py", "toml"):
            continue
        for line in body.replace("\\\n", " ").splitlines():
            match = COMMAND.search(line)
            if match and (lang in SHELL or names_a_command(match.group("command"))):
                found.append(match.group("command"))
    prose = FENCE.sub("", text)
    for span in INLINE.findall(prose):
        span = " ".join(span.split())
        if re.match(r"(python -m clrbench|clrbench) (-|[a-z])", span) or span in (
            "clrbench",
            "python -m clrbench",
        ):
            found.append(span)
    return found


def argv_of(command: str) -> list[str]:
    """The arguments after the program, up to a shell operator or a comment."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars=";&|<>")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    words = []
    for word in lexer:
        if word and set(word) <= set(";&|<>"):
            break
        words.append(word)
    start = 3 if words[:3] == ["python", "-m", "clrbench"] else 1
    return words[start:]


def options_of(parser: argparse.ArgumentParser) -> set[str]:
    return {o for a in parser._actions for o in a.option_strings}


def check_command(parser: argparse.ArgumentParser, argv: list[str]) -> str | None:
    """None if the real parser accepts ``argv`` and every flag is spelled out; else why not."""
    if not argv:
        return None  # the program named on its own
    commands = load_generator().subcommands(parser)
    command = next((w for w in argv if not w.startswith("-")), None)
    allowed = options_of(parser) | (options_of(commands[command]) if command in commands else set())
    for word in argv:
        flag = word.split("=", 1)[0]
        if word.startswith("-") and flag not in allowed and not re.fullmatch(r"-\d.*", word):
            return f"{flag} is not an option of {command or 'the program'}"
    err = io.StringIO()
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
            parser.parse_args(argv)
    except SystemExit as exit_:
        message = err.getvalue().strip().splitlines()[-1] if exit_.code not in (0, None) else ""
        named_only = [w for w in argv if not w.startswith("-")] == [command]
        if message and not (named_only and "arguments are required" in message):
            return message  # (a command named in prose, without its arguments, is fine)
    return None


COMMAND_PAGES = [p for p in PAGES if label(p).removeprefix("docs/") not in GENERATED]


@pytest.mark.parametrize("page", COMMAND_PAGES, ids=label)
def test_every_command_line_parses(page):
    parser = build_parser()
    problems = []
    for command in command_lines(page_text(page)):
        reason = check_command(parser, argv_of(command))
        if reason:
            problems.append(f"{command!r}: {reason}")
    assert not problems, "\n".join(problems)


def test_the_command_check_refuses_what_the_parser_refuses():
    parser = build_parser()
    assert check_command(parser, argv_of("clrbench run --preset quick --seeds 3")) is None
    assert check_command(parser, argv_of("python -m clrbench report A --out B  # comment")) is None
    assert "--seed is not an option of run" in check_command(parser, ["run", "--seed", "3"])
    assert "invalid choice" in check_command(parser, ["run", "--preset", "nope"])
    assert check_command(parser, ["frobnicate"]) is not None
    text = "```bash\nPYTHONPATH=x python -m clrbench run --no-such \\\n  --jobs 2\n```\n"
    text += "`clrbench list`, the clrbench regression gate"
    assert command_lines(text) == ["python -m clrbench run --no-such    --jobs 2", "clrbench list"]
    layout = "```\nclrbench/     the package\nclrbench lst\n```\n```bash\nclrbench lst\n```"
    assert command_lines(layout) == ["clrbench lst"]  # a typo in a shell block is a command


def test_the_docs_name_commands_at_all():
    """The extraction finds the commands (a regex that matched nothing would pass silently)."""
    found = [c for page in COMMAND_PAGES for c in command_lines(page_text(page))]
    subcommands = {argv_of(c)[0] for c in found if argv_of(c)}
    assert {
        "run",
        "report",
        "study",
        "check",
        "baseline",
        "lr-find",
        "export",
        "list",
    } <= subcommands


# --- generated references ---------------------------------------------------------------------


def test_the_generated_references_are_up_to_date():
    stale = [
        name
        for name, text in load_generator().generate().items()
        if (DOCS / "reference" / name).read_text(encoding="utf-8") != text
    ]
    assert not stale, f"stale: {stale}; run python docs/gen_reference.py"


def test_the_cli_reference_names_every_option():
    text = (DOCS / "reference/cli.md").read_text(encoding="utf-8")
    parser = build_parser()
    for name, sub in load_generator().subcommands(parser).items():
        assert f"\n## {name}\n" in text
        for option in options_of(sub):
            assert f"`{option}`" in text, (name, option)


# --- the README -------------------------------------------------------------------------------


def test_the_readme_is_short():
    assert len(README.read_text(encoding="utf-8").splitlines()) <= 200


def test_the_readme_links_resolve():
    text = README.read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)\s]+)\)", FENCE.sub("", text))
    assert targets
    for target in targets:
        if re.match(r"[a-z]+://", target):
            continue
        path = target.split("#", 1)[0]
        assert (REPO / path).exists(), f"README links {target}, which does not exist"


def first_code_block() -> str:
    return blocks(README.read_text(encoding="utf-8"))[0][1]


def test_the_readme_promises_what_ci_runs():
    """The README's first block holds the install and the test command; .ci/run runs both."""
    block, ci = first_code_block(), (REPO / ".ci/run").read_text(encoding="utf-8")
    assert "pip install -e '.[dev]'" in block and "python -m pytest" in block
    assert "python -m pip install -q -e '.[dev]'" in ci
    assert re.search(r"^python -m pytest +#", ci, re.M)
    assert re.search(r"^(\w+=\S+ )*mkdocs build --strict", ci, re.M)


def test_the_readme_sets_the_data_folder_before_the_first_command_that_needs_it():
    lines = [ln.split("#")[0] for ln in first_code_block().splitlines()]
    needs_data = next(
        i for i, ln in enumerate(lines) if re.search(r"clrbench (run|study|lr-find)", ln)
    )
    sets_it = next(i for i, ln in enumerate(lines) if "CLRBENCH_DATA_DIR=" in ln)
    assert sets_it < needs_data


def table_rows(text: str, header_start: str) -> dict[str, list[str]]:
    """The rows of the Markdown table whose header begins with ``header_start``, by first cell."""
    lines = text.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith(header_start))
    header = [c.strip() for c in lines[start].strip("|").split("|")]
    rows = {}
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        rows[cells[0]] = dict(zip(header, cells, strict=True))
    return rows


def number(text: str) -> float:
    return float(text.replace("−", "-").replace("*", "").replace("%", ""))


def test_the_readme_headline_is_the_committed_cross_workload_report():
    across = json.loads((REPO / "reports/workloads/across.json").read_text())
    text = README.read_text(encoding="utf-8")
    rows = table_rows(text, "| schedule | mnist-mlp")
    prose = " ".join(text.split())
    workloads = [w["name"] for w in across["workloads"]]
    differences = {(d["workload"], d["schedule"]): d for d in across["differences"]}
    summary = {(s["workload"], s["schedule"]): s for s in across["summary"]}
    ranks = across["rank_agreement"]
    scores = across["performance_profile"]["scores"]
    assert set(rows) == set(scores), "one row per schedule"
    for schedule, row in rows.items():
        for workload in workloads:
            cell = row[workload]
            if schedule == across["baseline"]:
                s = summary[(workload, schedule)]
                assert cell == f"{s['mean'] * 100:.2f}% ± {s['std'] * 100:.2f}", (
                    schedule,
                    workload,
                )
                continue
            d = differences[(workload, schedule)]
            pattern = r"(\*\*)?(\S+) pp\**, (\w+) \(p = ([\d.]+)\)"
            bold, shown, outcome, p = re.fullmatch(pattern, cell).groups()
            assert f"{number(shown):+.2f}" == f"{d['difference'] * 100:+.2f}", (schedule, workload)
            assert outcome == d["outcome"], (schedule, workload)
            assert bool(bold) == (outcome in ("better", "worse")), (schedule, workload)
            assert float(p) == float(f"{d['p_holm']:.2g}"), (schedule, workload)
        own = [r["rank"] for r in ranks["ranks"] if r["schedule"] == schedule]
        assert row["mean rank"] == f"{mean(own):.2f}"
        assert row["profile score"] == f"{scores[schedule]:.2f}"
    assert f"Kendall's W = {ranks['kendalls_w']:.2f}" in prose
    friedman = float(f"{ranks['p_value']:.2g}")
    assert f"Friedman p = {friedman}" in prose
    positive = sum(d["difference"] > 0 for d in differences.values())
    assert f"{positive} of the {len(differences)} differences" in prose
    decided = sum(d["outcome"] != "undecided" for d in differences.values())
    assert f"only {['no', 'one', 'two', 'three'][decided]} are decided" in prose


STUDIES = {
    "MNIST": "study",
    "Fashion-MNIST": "study-fashion-mnist-mlp",
    "MNIST-1D": "study-mnist1d-mlp",
}


def test_the_readme_tuned_answer_is_the_committed_studies():
    """Each cell of the README's tuned table is that study's median difference to its tuned
    constant and its decided outcome (or, for a study decided by the earlier protocol, says
    it is not re-decided), at the margin the column names."""
    text = README.read_text(encoding="utf-8")
    rows = table_rows(text, "| family | MNIST")
    checked = 0
    for family, row in rows.items():
        for column, cell in row.items():
            if column == "family":
                continue
            workload, margin = re.fullmatch(r"(\S+) \((.+)\)", column).groups()
            summary = json.loads(
                (REPO / "reports" / STUDIES[workload] / "summary.json").read_text()
            )
            expected = f"±{summary['margin']['margin_pp']:g} pp" if "margin" in summary else None
            assert margin == (expected or "no margin"), column
            headline = summary["headline"][family]
            bold, shown, outcome = re.fullmatch(r"(\*\*)?(\S+) pp\**, (.+)", cell).groups()
            assert f"{number(shown):+.2f}" == f"{headline['median'] * 100:+.2f}", (family, column)
            assert outcome == headline.get("outcome", "not re-decided"), (family, column)
            assert bool(bold) == (outcome in ("better", "worse")), (family, column)
            checked += 1
    assert checked == 4 * len(STUDIES)


GRID = REPO / "reports/grid-mnist1d-mlp"


def test_the_readme_grid_headline_is_the_committed_grid_report():
    """Every cell of the README's grid table is the committed grid report's summary.json: the
    median difference to the column's tuned constant over studies and its decided outcome; the
    best family and the cycles' answer in the prose are the report's too."""
    summary = json.loads((GRID / "summary.json").read_text())
    grid = summary["grid"]
    text = README.read_text(encoding="utf-8")
    rows = table_rows(text, "| schedule | sgd-momentum")
    places = {(c["schedule"], c["optimizer"]): (f, c) for f, c in grid["cells"].items()}
    seen = set()
    for schedule, row in rows.items():
        for optimizer, cell in row.items():
            if optimizer == "schedule":
                continue
            if cell in ("", "–"):
                assert (schedule, optimizer) not in places, (schedule, optimizer)
                continue
            family, found = places[(schedule, optimizer)]
            seen.add(family)
            if family == found["baseline"]:
                assert cell.startswith("tuned constant"), cell
                continue
            bold, shown, outcome = re.fullmatch(r"(\*\*)?(\S+) pp\**, (\w+)", cell).groups()
            assert f"{number(shown):+.2f}" == f"{found['median'] * 100:+.2f}", family
            assert outcome == found["outcome"], family
            assert bool(bold) == (found["outcome"] in ("better", "worse")), family
    assert seen == set(grid["cells"]), "every family of the grid is in the table"
    prose = " ".join(text.split())
    assert f"best family on validation is {grid['best']}" in prose
    margin = f"±{summary['margin']['margin_pp']:g} pp"
    assert margin in prose
    for cycles in grid["cycles"]:
        if cycles.get("outcome") is None:
            continue
        line = f"under {cycles['optimizer']}, {cycles['cyclic']} against {cycles['non_cyclic']}"
        assert line in prose, line
        shown = f"{cycles['median'] * 100:+.2f}".replace("-", "−")
        assert f"{line}: {shown} pp ({cycles['outcome']})" in prose, line
    assert f"{summary['studies_done']} studies" in prose


@pytest.mark.parametrize(
    ("rerun", "committed", "workload"),
    [("study-rerun", "study", "MNIST"),
     ("study-fashion-mnist-mlp-rerun", "study-fashion-mnist-mlp", "Fashion-MNIST")],
)  # fmt: skip
def test_a_rerun_is_the_committed_study_0_and_its_numbers_are_the_reports(
    rerun, committed, workload
):
    """docs/results.md: study 0 of each re-run reference (reports/*-rerun) is bitwise the
    committed study 0 in every per-study field both summaries carry, and the differences it
    quotes are the re-run's summary.json."""
    again = json.loads((REPO / "reports" / rerun / "summary.json").read_text())
    before = json.loads((REPO / "reports" / committed / "summary.json").read_text())
    new, old = again["per_study"][0], before["per_study"][0]
    assert new["study"] == old["study"] == 0 and again["studies_done"] == 1
    common = [key for key in old if key in new]
    assert {"winners", "final_test_accuracy"} <= set(common)
    for key in common:
        if key == "seeds":  # the re-run also records its final seeds
            assert {k: v for k, v in new[key].items() if k in old[key]} == old[key]
        else:
            assert new[key] == old[key], key
    text = (REPO / "docs/results.md").read_text(encoding="utf-8")
    paragraph = text[text.index("**The re-runs, 1 of 3 studies each.**") :].split("```")[0]
    said = paragraph[paragraph.index(f"on {workload}:") :].split(";")[0]
    for family, headline in again["headline"].items():
        assert f"{family} {points(headline['median'])}" in said, family
        assert headline["verdict"] == "undecided: cannot test, 1 study (at least 2 needed)"
