"""When drift retrains: new drift at once, drift that outlived a retraining only on the cadence."""

from __future__ import annotations

import datetime as dt

from jobs.models.monitoring.job import unanswered_drift

D = dt.date(2026, 3, 10)  # the night before the run


def _nights(*days_before: int) -> set[dt.date]:
    return {D - dt.timedelta(days=n) for n in days_before}


def test_no_flag_the_night_before_means_no_retraining() -> None:
    # Flagged two nights ago but not last night: the drift went away.
    assert not unanswered_drift(_nights(1, 2), D, last_trained=None)


def test_drift_of_a_model_never_trained_retrains() -> None:
    assert unanswered_drift(_nights(0), D, last_trained=None)


def test_drift_flagged_on_every_night_since_the_last_training_is_answered() -> None:
    # Trained last night (D) and its monitoring, after the training, still flagged: answered.
    assert not unanswered_drift(_nights(0), D, last_trained=D)
    # Trained 3 nights ago; flagged that night and each night since: still the same drift.
    assert not unanswered_drift(_nights(0, 1, 2, 3), D, last_trained=D - dt.timedelta(days=3))


def test_drift_that_began_after_the_last_training_retrains() -> None:
    # Trained 3 nights ago; that night and the next were clean, the drift began 1 night before D: new.
    assert unanswered_drift(_nights(0, 1), D, last_trained=D - dt.timedelta(days=3))
    # A gap in the streak (D-2 clean) makes last night's flag a new drift.
    assert unanswered_drift(_nights(0, 1, 3), D, last_trained=D - dt.timedelta(days=3))


def test_a_training_after_the_flagged_night_does_not_answer_it() -> None:
    # A backfill: the latest training is later than the night looked at; the flag stands.
    assert unanswered_drift(_nights(0), D, last_trained=D + dt.timedelta(days=2))
