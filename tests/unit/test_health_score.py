"""The health score as a table: signals in, score, band and the reasons in words out."""

from __future__ import annotations

from pathlib import Path

import pytest

from handoff.health import (
    DEFAULT_PATH,
    HealthConfig,
    HealthInputs,
    load_health_config,
    score_health,
)
from handoff.sentiment import frustration_cues, is_negative, negativity

CFG = HealthConfig()

HEALTHY = HealthInputs(
    active_recent=50,
    active_prior=48,
    seats=60,
    active_last_week=50,
    logins_per_seat_week=3.5,
    nps_scores=(9,),
    csat_scores=(5, 4),
    days_to_renewal=200,
)


def with_(**changes: object) -> HealthInputs:
    from dataclasses import replace

    return replace(HEALTHY, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "inputs", "status", "reason"),
    [
        ("healthy", HEALTHY, "green", None),
        (
            "usage halves",
            with_(active_recent=24),
            "yellow",
            "active users -50% in the last 7 days vs the 21 before",
        ),
        ("three escalations", with_(escalations=3), "red", "3 escalations in 14 days"),
        ("one escalation", with_(escalations=1), "green", "1 escalation in 14 days"),
        (
            "low seat use",
            with_(active_last_week=12, logins_per_seat_week=0.4),
            "yellow",
            "seat utilisation 20% (12 of 60)",
        ),
        ("detractor", with_(nps_scores=(2,)), "green", "NPS 2.0/10 (detractor, 1 answer)"),
        (
            "angry and repeated",
            with_(negative_messages=3, repeated_intents=("export_data",), didnt_help=3),
            "yellow",
            "3 negative customer messages in 30 days",
        ),
        ("renewal close", with_(days_to_renewal=9), "green", "renewal in 9 days"),
        ("no data at all", HealthInputs(), "green", None),
    ],
)
def test_score_table(name: str, inputs: HealthInputs, status: str, reason: str | None) -> None:
    result = score_health(inputs, CFG)
    assert 0 <= result.score <= 100
    assert result.status == status, (name, result.score, result.reasons())
    if reason is not None:
        assert reason in result.reasons(), result.reasons()


def test_healthy_account_scores_above_every_unhealthy_variant() -> None:
    best = score_health(HEALTHY, CFG).score
    for worse in (
        with_(active_recent=30),
        with_(escalations=2),
        with_(nps_scores=(3,)),
        with_(didnt_help=2),
        with_(csat_scores=(1,)),
    ):
        assert score_health(worse, CFG).score < best


def test_reasons_put_the_costliest_factor_first() -> None:
    result = score_health(with_(active_recent=25, didnt_help=1), CFG)
    assert result.reasons()[0] == "active users -48% in the last 7 days vs the 21 before"


def test_a_capped_factor_limits_the_score() -> None:
    result = score_health(with_(escalations=5), CFG)
    assert result.score == CFG.factors.escalations.cap
    assert result.capped_by == "escalations"


def test_bundled_health_file_is_valid_and_matches_the_defaults() -> None:
    assert load_health_config(DEFAULT_PATH) == CFG


def test_unknown_key_in_health_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "health.yaml"
    path.write_text("factors:\n  usage_trend:\n    wieght: 3\n", encoding="utf-8")
    with pytest.raises(ValueError, match="health.yaml"):
        load_health_config(path)


@pytest.mark.parametrize(
    "text",
    [
        "This is unacceptable, the export is broken again",
        "I'm really frustrated, nothing works and nobody answers",
        "WHY IS THE DASHBOARD DOWN AGAIN???",
        "we are going to switch to a competitor",
    ],
)
def test_frustrated_messages_are_negative(text: str) -> None:
    assert is_negative(text), (negativity(text), frustration_cues(text))


@pytest.mark.parametrize(
    "text",
    [
        "how do I reset my password?",
        "thanks, that solved it!",
        "Can I get a copy of last month's invoice please",
        "",
    ],
)
def test_plain_questions_are_not_negative(text: str) -> None:
    assert not is_negative(text), negativity(text)


def test_trend_words_and_sparkline_geometry() -> None:
    from datetime import date

    from bot.web.charts import sparkline
    from handoff.health import HealthTrend

    d = date(2026, 1, 1)
    falling = HealthTrend(((d, 90), (date(2026, 1, 15), 60), (date(2026, 1, 22), 54)), 30)
    assert (falling.delta, falling.words()) == (-36, "-36 in 21 days")
    assert HealthTrend(((d, 70), (date(2026, 1, 8), 70)), 30).words() == "steady over 7 days"
    assert HealthTrend(((d, 70),), 30).words() == ""
    spark = sparkline([100, 50, 0], width=104, height=24)
    # 2 px padding: 100 at the top, 0 at the bottom, evenly spaced
    assert spark["points"] == "2.0,2.0 52.0,12.0 102.0,22.0"
    assert spark["last"] == {"x": 102.0, "y": 22.0}
    assert sparkline([42])["points"] == ""
