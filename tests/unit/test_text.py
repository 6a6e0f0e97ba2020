from handoff.text import storable, storable_json


def test_nul_and_lone_surrogates_become_replacement_characters() -> None:
    assert storable("a\x00b\ud800c") == "a\ufffdb\ufffdc"


def test_ordinary_unicode_is_untouched() -> None:
    text = "Grüße 👋 日本語"
    assert storable(text) == text


def test_json_keys_and_nested_values_are_cleaned() -> None:
    assert storable_json({"k\x00": ["x\udfff", 1, None]}) == {"k\ufffd": ["x\ufffd", 1, None]}


def test_redaction_covers_tracebacks() -> None:
    import logging

    from bot.logs import RedactSecrets

    secret = "123456:SECRET-token-value"
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed %s", (secret,), None)
    try:
        raise RuntimeError(f"GET https://api.telegram.org/bot{secret}/sendMessage")
    except RuntimeError:
        import sys

        record.exc_info = sys.exc_info()
    RedactSecrets([secret]).filter(record)
    formatted = logging.Formatter().format(record)
    assert secret not in formatted
    assert "[REDACTED]" in formatted
