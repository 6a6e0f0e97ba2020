"""The escalation policy as a table of cases."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from bot.settings import ROOT
from handoff.escalation import (
    AccountFacts,
    Action,
    MessageFacts,
    PolicyConfig,
    Reason,
    clarify_candidates,
    decide,
    describe_wait,
    load_policy,
    strategic_term,
)

TODAY = date(2026, 11, 25)
POLICY = load_policy(ROOT / "data" / "policy.yaml")

FAQ = MessageFacts(intent="password_reset", category="faq", confidence=0.97)
STRATEGIC = MessageFacts(intent="contract_renewal", category="strategic", confidence=0.9)
UNSURE = MessageFacts(intent=None, category=None, confidence=0.31)
HUMAN = MessageFacts(intent="talk_to_human", category="human", confidence=0.95)
ANGRY = MessageFacts(intent="bug_report", category="faq", confidence=0.9, negativity=0.9)
AGAIN = MessageFacts(intent="bug_report", category="faq", confidence=0.9, same_intent_recent=2)
DIDNT_HELP = MessageFacts(intent=None, category=None, confidence=0.0, didnt_help=True)
GREETING = MessageFacts(intent="greeting", category="smalltalk", confidence=0.99)
WEAK = MessageFacts(intent="invoice_request", category="faq", confidence=0.4)
GDPR_AS_FAQ = MessageFacts(
    intent="delete_account_data", category="faq", confidence=0.97, strategic_term="GDPR"
)
UNKNOWN = MessageFacts(intent=None, category=None, confidence=0.6, abstain_reason="unknown_topic")
UNSURE_OF_ONE = MessageFacts(
    intent=None, category=None, confidence=0.3, abstain_reason="low_confidence"
)
TWO_CANDIDATES = ("invoice_request", "payment_failed")
AMBIGUOUS = MessageFacts(
    intent=None,
    category=None,
    confidence=0.4,
    abstain_reason="ambiguous",
    candidates=TWO_CANDIDATES,
)
AMBIGUOUS_ONE_CANDIDATE = MessageFacts(
    intent=None,
    category=None,
    confidence=0.4,
    abstain_reason="ambiguous",
    candidates=("invoice_request",),
)
AMBIGUOUS_AGAIN = MessageFacts(
    intent=None,
    category=None,
    confidence=0.4,
    abstain_reason="ambiguous",
    candidates=TWO_CANDIDATES,
    after_clarification=True,
)

NORMAL = AccountFacts(tier="smb", arr=4800, renewal_date=TODAY + timedelta(days=300))
VIP_TIER = AccountFacts(tier="enterprise", arr=10_000)
VIP_ARR = AccountFacts(tier="smb", arr=80_000)
VIP_QBR = AccountFacts(tier="smb", next_qbr_date=TODAY + timedelta(days=6))
VIP_EXPANSION = AccountFacts(tier="smb", expansion_stage="negotiation")
RENEWING = AccountFacts(tier="smb", renewal_date=TODAY + timedelta(days=45))
RENEWAL_WINDOW_ONLY = AccountFacts(tier="smb", renewal_date=TODAY + timedelta(days=80))
AT_RISK = AccountFacts(tier="smb", health_status="red", health_score=30)
QBR_PAST = AccountFacts(tier="smb", next_qbr_date=TODAY - timedelta(days=3))

R = Reason
CASES = [
    # (name, message, account, action, priority, reasons that must be present, offer_human)
    ("plain faq, normal account: answered", FAQ, NORMAL, Action.answer, None, set(), False),
    ("plain faq, no account: answered", FAQ, None, Action.answer, None, set(), False),
    ("greeting: answered", GREETING, AT_RISK, Action.answer, None, set(), False),
    ("strategic, normal: P2", STRATEGIC, NORMAL, Action.escalate, 2, {R.strategic_intent}, False),
    ("unsure: P3 low confidence", UNSURE, NORMAL, Action.escalate, 3, {R.low_confidence}, False),
    ("weak faq: low confidence", WEAK, None, Action.escalate, 3, {R.low_confidence}, False),
    ("asks for a person: P2", HUMAN, None, Action.escalate, 2, {R.requested_human}, False),
    ("negative: P2", ANGRY, NORMAL, Action.escalate, 2, {R.negative_sentiment}, False),
    ("same problem again: P2", AGAIN, NORMAL, Action.escalate, 2, {R.repeated_contact}, False),
    ("didn't help: repeated", DIDNT_HELP, None, Action.escalate, 2, {R.repeated_contact}, False),
    (
        "VIP by tier, strategic: P1",
        STRATEGIC,
        VIP_TIER,
        Action.escalate,
        1,
        {R.strategic_intent, R.vip_account},
        False,
    ),
    (
        "VIP by ARR, unsure: P1",
        UNSURE,
        VIP_ARR,
        Action.escalate,
        1,
        {R.low_confidence, R.vip_account},
        False,
    ),
    (
        "VIP by QBR, negative: P1",
        ANGRY,
        VIP_QBR,
        Action.escalate,
        1,
        {R.negative_sentiment, R.vip_account},
        False,
    ),
    (
        "VIP by expansion, plain faq: answered with offer",
        FAQ,
        VIP_EXPANSION,
        Action.answer,
        None,
        set(),
        True,
    ),
    (
        "VIP by renewal, strategic: P1 with renewal window",
        STRATEGIC,
        RENEWING,
        Action.escalate,
        1,
        {R.vip_account, R.renewal_window, R.strategic_intent},
        False,
    ),
    (
        "renewal window, unsure: P2",
        UNSURE,
        RENEWAL_WINDOW_ONLY,
        Action.escalate,
        2,
        {R.renewal_window, R.low_confidence},
        False,
    ),
    ("at risk, plain faq: escalated", FAQ, AT_RISK, Action.escalate, 2, {R.at_risk_account}, False),
    (
        "at risk, strategic: P1",
        STRATEGIC,
        AT_RISK,
        Action.escalate,
        1,
        {R.at_risk_account, R.strategic_intent},
        False,
    ),
    ("QBR in the past is not VIP", FAQ, QBR_PAST, Action.answer, None, set(), False),
    (
        "a strategic term overrides a confident FAQ: P2",
        GDPR_AS_FAQ,
        NORMAL,
        Action.escalate,
        2,
        {R.strategic_intent},
        False,
    ),
    ("unknown topic: P3", UNKNOWN, NORMAL, Action.escalate, 3, {R.unknown_topic}, False),
    ("abstained, unsure: P3", UNSURE_OF_ONE, None, Action.escalate, 3, {R.low_confidence}, False),
    ("ambiguous: clarify", AMBIGUOUS, NORMAL, Action.clarify, None, {R.ambiguous}, False),
    (
        "ambiguous, one candidate: P3",
        AMBIGUOUS_ONE_CANDIDATE,
        NORMAL,
        Action.escalate,
        3,
        {R.ambiguous},
        False,
    ),
    (
        "ambiguous after a clarification: P3",
        AMBIGUOUS_AGAIN,
        None,
        Action.escalate,
        3,
        {R.ambiguous},
        False,
    ),
    (
        "VIP, unknown topic: P1",
        UNKNOWN,
        VIP_ARR,
        Action.escalate,
        1,
        {R.unknown_topic, R.vip_account},
        False,
    ),
    (
        "renewal window, ambiguous again: P2",
        AMBIGUOUS_AGAIN,
        RENEWAL_WINDOW_ONLY,
        Action.escalate,
        2,
        {R.ambiguous, R.renewal_window},
        False,
    ),
    (
        "VIP answered with offer, ambiguous: clarify",
        AMBIGUOUS,
        VIP_TIER,
        Action.clarify,
        None,
        {R.ambiguous},
        False,
    ),
    (
        "at risk, ambiguous: P1 instead of a clarification",
        AMBIGUOUS,
        AT_RISK,
        Action.escalate,
        1,
        {R.ambiguous, R.at_risk_account},
        False,
    ),
]


@pytest.mark.parametrize(
    ("message", "account", "action", "priority", "reasons", "offer"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_policy_decides_by_the_table(message, account, action, priority, reasons, offer) -> None:
    decision = decide(POLICY, message, account, TODAY)
    assert decision.action is action
    assert decision.priority == priority
    assert reasons <= set(decision.reasons)
    assert decision.offer_human is offer


def test_plain_faq_from_vip_escalates_when_policy_says_so() -> None:
    policy = POLICY.model_copy(
        update={"vip": POLICY.vip.model_copy(update={"plain_faq": "escalate"})}
    )
    decision = decide(policy, FAQ, VIP_TIER, TODAY)
    assert decision.action is Action.escalate
    assert decision.reasons == (R.vip_account,)


def test_unknown_policy_key_is_refused(tmp_path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("min_confidence: 0.5\nvip_treshold: 3\n")
    with pytest.raises(ValueError, match="vip_treshold"):
        load_policy(path)


def test_default_config_matches_shipped_policy_file() -> None:
    assert PolicyConfig().vip.qbr_within_days == POLICY.vip.qbr_within_days == 14


@pytest.mark.parametrize(
    ("text", "term"),
    [
        ("gdpr deletion", "gdpr"),
        ("Please delete all personal data under GDPR.", "GDPR"),
        ("I found a security   Vulnerability in your app", "Vulnerability"),
        ("can we pen test your app", "pen test"),
        ("stop charging my card!", "stop charging"),
        ("we need fewer seats", "fewer seats"),
        ("We will not renew", "not renew"),
        ("our lawyer will contact you", "lawyer"),
    ],
)
def test_shipped_strategic_terms_are_found_in_running_text(text: str, term: str) -> None:
    assert strategic_term(POLICY, text) == term


@pytest.mark.parametrize(
    "text",
    [
        "how do I reset my password?",
        "how do I delete my data export file",
        "the issue is pending",  # "sue" inside a word does not count
        "how do I cancel an invitation?",
    ],
)
def test_ordinary_questions_name_no_strategic_term(text: str) -> None:
    assert strategic_term(POLICY, text) is None


def test_no_terms_configured_matches_nothing() -> None:
    assert strategic_term(PolicyConfig(), "gdpr lawyer refund") is None


# -- abstain reasons and "did you mean ...?" ----------------------------------------------------


@pytest.mark.parametrize(
    ("abstain_reason", "reason"),
    [
        ("unknown_topic", R.unknown_topic),
        ("ambiguous", R.ambiguous),
        ("low_confidence", R.low_confidence),
        (None, R.low_confidence),
        ("something_new", R.low_confidence),
    ],
)
def test_an_abstention_is_escalated_with_the_classifiers_reason(
    abstain_reason: str | None, reason: Reason
) -> None:
    message = MessageFacts(
        intent=None, category=None, confidence=0.3, abstain_reason=abstain_reason
    )
    decision = decide(POLICY, message, NORMAL, TODAY)
    assert (decision.action, decision.reasons) == (Action.escalate, (reason,))


def test_a_confident_intent_below_the_policys_threshold_is_low_confidence() -> None:
    decision = decide(POLICY, WEAK, NORMAL, TODAY)
    assert decision.reasons == (R.low_confidence,)


def test_clarify_offers_the_candidates_it_was_given() -> None:
    decision = decide(POLICY, AMBIGUOUS, NORMAL, TODAY)
    assert decision.action is Action.clarify
    assert decision.candidates == TWO_CANDIDATES
    assert decision.priority is None


def test_clarify_offers_at_most_three_candidates() -> None:
    four = ("invoice_request", "payment_failed", "change_payment_method", "billing_address_vat")
    message = MessageFacts(
        intent=None, category=None, confidence=0.3, abstain_reason="ambiguous", candidates=four
    )
    assert decide(POLICY, message, None, TODAY).candidates == four[:3]


@pytest.mark.parametrize(
    "extra",
    [
        {"requested_human": True},
        {"strategic_term": "refund"},
        {"negativity": 0.95},
        {"didnt_help": True},
    ],
    ids=["asks for a person", "strategic term", "negative", "didn't help"],
)
def test_an_ambiguous_message_that_needs_a_person_anyway_is_not_clarified(
    extra: dict[str, object],
) -> None:
    message = MessageFacts(
        intent=None,
        category=None,
        confidence=0.4,
        abstain_reason="ambiguous",
        candidates=TWO_CANDIDATES,
        **extra,  # type: ignore[arg-type]
    )
    decision = decide(POLICY, message, NORMAL, TODAY)
    assert decision.action is Action.escalate
    assert R.ambiguous in decision.reasons


def test_an_ambiguous_message_of_a_vip_whose_faqs_escalate_is_not_clarified() -> None:
    policy = POLICY.model_copy(
        update={"vip": POLICY.vip.model_copy(update={"plain_faq": "escalate"})}
    )
    decision = decide(policy, AMBIGUOUS, VIP_TIER, TODAY)
    assert decision.action is Action.escalate
    assert set(decision.reasons) == {R.ambiguous, R.vip_account}


def test_talk_to_a_person_after_a_clarification_has_both_reasons() -> None:
    message = MessageFacts(
        intent=None,
        category=None,
        confidence=0.0,
        abstain_reason="ambiguous",
        requested_human=True,
    )
    decision = decide(POLICY, message, None, TODAY)
    assert decision.reasons == (R.requested_human, R.ambiguous)


CATEGORIES = {
    "invoice_request": "faq",
    "payment_failed": "faq",
    "change_payment_method": "faq",
    "billing_address_vat": "faq",
    "greeting": "smalltalk",
    "cancel_subscription": "strategic",
    "talk_to_human": "human",
    "out_of_scope": "out_of_scope",
}


def test_candidates_are_the_answerable_intents_in_order_of_probability() -> None:
    ranked = [("invoice_request", 0.40), ("payment_failed", 0.35), ("greeting", 0.2)]
    assert clarify_candidates(POLICY, ranked, CATEGORIES) == (
        "invoice_request",
        "payment_failed",
        "greeting",
    )


def test_candidates_skip_intents_the_bot_never_answers() -> None:
    ranked = [
        ("cancel_subscription", 0.4),
        ("invoice_request", 0.3),
        ("talk_to_human", 0.2),
        ("out_of_scope", 0.2),
        ("payment_failed", 0.2),
        ("unknown_intent", 0.2),
    ]
    assert clarify_candidates(POLICY, ranked, CATEGORIES) == ("invoice_request", "payment_failed")


def test_candidates_below_a_tenth_or_a_third_of_the_best_are_left_out() -> None:
    ranked = [
        ("invoice_request", 0.60),
        ("payment_failed", 0.21),  # >= 0.1 and >= 0.6 / 3
        ("change_payment_method", 0.19),  # >= 0.1 but < 0.6 / 3
    ]
    assert clarify_candidates(POLICY, ranked, CATEGORIES) == ("invoice_request", "payment_failed")
    low = [("invoice_request", 0.2), ("payment_failed", 0.09)]
    assert clarify_candidates(POLICY, low, CATEGORIES) == ("invoice_request",)


def test_candidates_are_at_most_three_and_never_repeated() -> None:
    ranked = [
        ("invoice_request", 0.3),
        ("invoice_request", 0.3),
        ("payment_failed", 0.25),
        ("change_payment_method", 0.2),
        ("billing_address_vat", 0.2),
    ]
    assert clarify_candidates(POLICY, ranked, CATEGORIES) == (
        "invoice_request",
        "payment_failed",
        "change_payment_method",
    )


def test_no_ranking_gives_no_candidates() -> None:
    assert clarify_candidates(POLICY, [], CATEGORIES) == ()


def test_a_request_for_a_person_by_command_or_button_is_only_requested_human_at_p2() -> None:
    tapped = MessageFacts(intent=None, category=None, confidence=0.0, requested_human=True)
    decision = decide(POLICY, tapped, NORMAL, TODAY)
    assert (decision.reasons, decision.priority) == ((R.requested_human,), 2)


@pytest.mark.parametrize(
    ("minutes", "words"),
    [(15, "15 minutes"), (60, "60 minutes"), (240, "4 hours"), (90, "90 minutes")],
)
def test_a_first_response_target_is_put_in_words(minutes: int, words: str) -> None:
    assert describe_wait(minutes) == words


@pytest.mark.parametrize(
    "text",
    [
        "please delete all my personal data",
        "erase my data",
        "remove everything you store about me",
    ],
)
def test_an_erasure_request_names_a_strategic_term(text: str) -> None:
    assert strategic_term(POLICY, text) is not None
