"""What the study report opens with (``clrbench.reporting.lead``): each family's difference to
the tuned baseline on test, the median over studies with the 95% t-interval of the mean over
studies and every study's own difference, as one figure and one sentence."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from clrbench.reporting import lead
from clrbench.reporting.words import say

if TYPE_CHECKING:
    from clrbench.study.records import StudyAnalysis


def rows(analysis: StudyAnalysis):
    """The headline rows (``across_studies``): one per family but the baseline."""
    return analysis.across


def answer(analysis: StudyAnalysis) -> str:
    """One sentence: every family's median difference to the tuned baseline and its interval."""
    baseline = analysis.baseline
    if analysis.per_study.empty:
        return say("study", "lead_nothing", baseline)
    return lead.answer_sentence(
        rows(analysis),
        say("study", "lead_opening", baseline, analysis.config.studies),
        label="family",
        value="median",
        missing=say("study", "lead_missing"),
    )


def figure(analysis: StudyAnalysis, colors: dict[str, Any]) -> dict[str, Any] | None:
    """The lead figure, or None before any final runs."""
    if analysis.per_study.empty:
        return None
    baseline = analysis.baseline
    points = analysis.per_study
    points = points[points["family"] != baseline]
    drawn = lead.differences_figure(
        rows(analysis),
        colors,
        say("figures", "study_lead_xlabel", baseline),
        label="family",
        value="median",
        points=points,
        margin=lead.margin_of(rows(analysis)),
    )
    caption = say("figures", "study_lead_caption", baseline)
    return lead.lead_spec(drawn, say("figures", "study_lead_title", baseline), caption)
