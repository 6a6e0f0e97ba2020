"""How negative (frustrated, angry) a customer's message sounds: a score from 0 to 1.

Two parts, the higher wins:

* **Tone** from VADER (Hutto & Gilbert 2014, the ``vaderSentiment`` package), a lexicon and
  rule model that handles negation, intensifiers, capitals and punctuation. Its ``compound``
  score runs from -1 to +1; ``-compound / TONE_SCALE`` maps a clearly negative message
  (compound <= -0.5, VADER's "strongly negative") to >= 0.83 and a mildly negative one (-0.3)
  to 0.5.
* **Support frustration cues** that a social-media lexicon misses: repeated failure
  ("again", "still not working", "third time"), waiting, complaints, threats to leave, shouting
  in capitals, "???" / "!!!". A strong cue (an explicit judgement such as "unacceptable", a
  complaint, a threat to switch to a competitor, profanity) alone reaches the policy's default
  threshold (0.7); each weak cue (circumstantial: "again", "still not", waiting, "???") adds
  ``WEAK_CUE`` on top of the tone.

The escalation policy treats a score >= ``sentiment.negative_threshold`` (data/policy.yaml) as
``negative_sentiment``. Figures on held-out labelled samples are in docs/benchmarks.md.
"""

from __future__ import annotations

import functools
import re

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

TONE_SCALE = 0.6
STRONG_CUE = 0.7  # an explicit negative judgement: "unacceptable", a complaint, profanity
WEAK_CUE = 0.35  # circumstantial frustration: "again", "still not", waiting, "???"
NEGATIVE_THRESHOLD = 0.7  # the policy's default, for callers without a policy

_STRONG = [
    r"\b(unacceptable|ridiculous|joke|useless|worst|fed up|sick of|furious|unhappy)\b",
    r"\bnot (happy|ok|okay|acceptable|good enough)\b",
    r"\b(complaint|complain|claim against|reclamation)\b",
    r"\b(switch(ing)? to|move to|go(ing)? to) (a |another )?competitor\b",
    r"\b(damn|goddamn|bloody|fucking|fuck|shit|crap|crappy)\b",
]
_WEAK = [
    r"\bagain\b|\bcame back\b",
    r"\bstill (not|doesn'?t|does not|isn'?t|broken|failing|waiting)\b",
    r"\b(second|third|fourth|fifth|\d+(st|nd|rd|th)) time\b",
    r"\b(keeps?|kept) (failing|crashing|breaking|happening|asking|ignoring)\b",
    r"\b(waiting|waited) (for )?(\d+|days|weeks|hours|ages|forever)\b",
    r"\bno ?one (replies|answers|responds|helps|cares)\b|\bnobody\b|\bnever (answers|replies)\b",
    r"\b(cancel(l?ing)?|leave|leaving)\b",
    r"[!?]{3,}",
]
_STRONG_RE = [re.compile(c, re.IGNORECASE) for c in _STRONG]
_WEAK_RE = [re.compile(c, re.IGNORECASE) for c in _WEAK]
_SHOUT_RE = re.compile(r"\b[A-Z]{3,}\b")


@functools.cache
def _analyzer() -> SentimentIntensityAnalyzer:
    """VADER's analyzer (reads its lexicon once, on first use; never at import)."""
    return SentimentIntensityAnalyzer()


def frustration_cues(text: str) -> tuple[list[str], list[str]]:
    """The (strong, weak) support frustration cues found in ``text``."""
    strong = [m.group(0) for rx in _STRONG_RE if (m := rx.search(text))]
    weak = [m.group(0) for rx in _WEAK_RE if (m := rx.search(text))]
    shouted = _SHOUT_RE.findall(text)
    letters = sum(ch.isalpha() for ch in text)
    if len(shouted) >= 2 and sum(len(w) for w in shouted) >= 0.5 * max(letters, 1):
        weak.append("SHOUTING")
    return strong, weak


def negativity(text: str) -> float:
    """0 (neutral or positive) to 1 (clearly negative or frustrated)."""
    if not text or not text.strip():
        return 0.0
    compound = float(_analyzer().polarity_scores(text)["compound"])
    tone = max(0.0, -compound) / TONE_SCALE
    strong, weak = frustration_cues(text)
    base = max(tone, STRONG_CUE if strong else 0.0)
    return round(min(1.0, base + WEAK_CUE * len(weak)), 3)


def is_negative(text: str, threshold: float = NEGATIVE_THRESHOLD) -> bool:
    """True when the message reads as negative at ``threshold``."""
    return negativity(text) >= threshold
