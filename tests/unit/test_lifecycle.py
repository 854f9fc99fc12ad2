"""Every allowed and every refused transition of the referral lifecycle."""

import pytest

from engine.domain.lifecycle import (
    BY_ACTION,
    OPEN_STATES,
    REFUSAL_REASONS,
    STATES,
    TRANSITIONS,
    TransitionError,
    allowed_actions,
    check_transition,
)


def _kwargs(action: str) -> dict:
    t = BY_ACTION[action]
    kw: dict = {}
    if t.needs_outcome:
        kw["outcome"] = "resolved"
    if t.needs_reason:
        kw["reason"] = "unreachable"
    if t.needs_offer:
        kw["offer_id"] = 1
    if t.needs_pool:
        kw["pool_id"] = 1
    return kw


ALL_PAIRS = [(s, t.action) for s in STATES for t in TRANSITIONS]


@pytest.mark.parametrize(("state", "action"), ALL_PAIRS)
def test_every_pair_is_allowed_exactly_when_the_table_says(state, action):
    t = BY_ACTION[action]
    if state in t.sources:
        assert check_transition(state, action, **_kwargs(action)).target == t.target
    else:
        with pytest.raises(TransitionError, match="impossible"):
            check_transition(state, action, **_kwargs(action))


def test_terminal_states_have_no_way_out():
    for state in set(STATES) - set(OPEN_STATES):
        assert allowed_actions(state, include_system=True) == []


def test_close_needs_an_outcome():
    with pytest.raises(TransitionError, match="sans résultat"):
        check_transition("in_progress", "close")
    with pytest.raises(TransitionError, match="résultat inconnu"):
        check_transition("in_progress", "close", outcome="great")


def test_refusal_needs_a_coded_reason_and_other_needs_a_note():
    with pytest.raises(TransitionError, match="motif"):
        check_transition("triaging", "refuse")
    with pytest.raises(TransitionError, match="inconnu"):
        check_transition("triaging", "refuse", reason="bored")
    with pytest.raises(TransitionError, match="précision"):
        check_transition("triaging", "refuse", reason="other", note="  ")
    assert (
        check_transition("triaging", "refuse", reason="other", note="déménagé").target == "refused"
    )
    for reason in REFUSAL_REASONS:
        if reason != "other":
            assert check_transition("referred", "refuse", reason=reason).target == "refused"


def test_refer_needs_an_offer_and_waitlist_a_pool():
    with pytest.raises(TransitionError, match="offre"):
        check_transition("triaging", "refer")
    with pytest.raises(TransitionError, match="dispositif"):
        check_transition("triaging", "waitlist")


def test_unknown_action():
    with pytest.raises(TransitionError, match="inconnue"):
        check_transition("new", "teleport")


def test_system_actions_are_hidden_from_people():
    assert "propose" not in [t.action for t in allowed_actions("waitlisted")]
    assert "propose" in [t.action for t in allowed_actions("waitlisted", include_system=True)]


def test_every_code_of_the_vocabulary_has_its_french_label():
    from engine.domain import labels, vocabulary

    assert set(labels.ROLE_LABELS) >= set(vocabulary.ROLES)
    assert set(labels.ROLE_PLURAL_LABELS) == set(vocabulary.ROLES)
    assert set(labels.HOUSING_LABELS) == set(vocabulary.HOUSING)
    assert set(labels.PROGRAMME_LABELS) == set(vocabulary.PROGRAMMES)
    assert set(labels.FREIN_STATUS_LABELS) == set(vocabulary.FREIN_STATUSES)
    assert set(labels.PROPOSAL_LABELS) == set(vocabulary.PROPOSAL_STATUSES)
    assert set(labels.RUN_STATUS_LABELS) == set(vocabulary.RUN_STATUSES)
    assert set(labels.PREFERENCE_MODE_LABELS) == set(vocabulary.PREFERENCE_MODES)
    assert set(labels.DOMAIN_LABELS) == set(vocabulary.DOMAINS)
    assert set(labels.EXIT_LABELS) == set(vocabulary.EXIT_CATEGORIES)
    assert set(labels.HEALTH_EVENT_LABELS) == set(vocabulary.HEALTH_EVENT_KINDS)
    assert set(labels.REFERRED_BY_LABELS) == set(vocabulary.REFERRED_BY)
    assert set(labels.FOLLOWUP_LABELS) == set(vocabulary.FOLLOWUP_MONTHS)


def test_the_pure_reporting_package_speaks_of_the_same_states_as_the_lifecycle():
    """reporting/ is pure and cannot import the engine: its copy of the states must agree."""
    from engine.domain.lifecycle import OPEN_STATES, STATE_LABELS
    from reporting import operations

    assert operations.STATES == STATE_LABELS
    assert frozenset(OPEN_STATES) == operations.OPEN_STATES
