"""Session options, the language rule, and the server configuration."""

from __future__ import annotations

import argparse

import pytest

from gateway.config import ServerConfig, add_arguments, from_namespace
from gateway.core.errors import ProtocolError
from gateway.core.languages import english_only_refusal
from gateway.core.options import SessionOptions, parse_options

LANGS = {"en", "de"}


def test_query_strings_are_coerced():
    o = parse_options(
        {"sample_rate": "8000", "encoding": "mulaw", "interim_results": "false", "endpoint_ms": "700", "max_segment_s": "9.5", "language": "DE"},
        SessionOptions(), LANGS,
    )
    assert (o.sample_rate, o.encoding, o.interim_results, o.endpoint_ms, o.max_segment_s, o.language) == (8000, "mulaw", False, 700, 9.5, "de")


def test_pre_roll_and_the_telephony_encodings_are_options():
    o = parse_options({"pre_roll_ms": "600", "encoding": "alaw", "sample_rate": 8000}, SessionOptions(), LANGS)
    assert (o.pre_roll_ms, o.encoding) == (600, "alaw") and SessionOptions().pre_roll_ms == 300
    assert parse_options({"encoding": "pcm_s32le"}, SessionOptions(), LANGS).encoding == "pcm_s32le"


def test_channels_and_their_labels():
    o = parse_options({"channels": "2", "channel_labels": " agent , caller "}, SessionOptions(), LANGS)
    assert o.channels == 2 and o.labels == ("agent", "caller")
    assert parse_options({"channels": 3}, SessionOptions(), LANGS).labels == ("0", "1", "2")


def test_json_values_are_taken_as_they_are():
    o = parse_options({"interim_results": False, "vad_aggressiveness": 3, "language": None}, SessionOptions(language="en"), LANGS)
    assert o.interim_results is False and o.vad_aggressiveness == 3 and o.language is None


@pytest.mark.parametrize(
    "raw, needle",
    [
        ({"speed": 2}, "unknown option(s) speed"),
        ({"sample_rate": 11025}, "8000, 16000"),
        ({"sample_rate": "fast"}, "integer"),
        ({"endpoint_ms": 99}, "between 100 and 5000"),
        ({"max_segment_s": 40}, "between 2.0 and 28.0"),
        ({"vad_aggressiveness": 1.5}, "integer"),
        ({"interim_results": "perhaps"}, "true or false"),
        ({"task": "summarise"}, "transcribe, translate"),
        ({"language": "klingon"}, "ISO-639-1"),
        ({"encoding": "opus"}, "pcm_s16le"),
        ({"prompt": 5}, "string"),
        ({"endpoint_ms": True}, "number"),
        ({"endpoint_ms": float("inf")}, "integer"),  # JSON's 1e400
        ({"max_segment_s": float("nan")}, "between 2.0 and 28.0"),
        ({"prompt": "x" * 4001}, "the limit is 4000"),
        ({"pre_roll_ms": 1500}, "between 0 and 1000"),
        ({"channels": 9}, "between 1 and 8"),
        ({"time_offset": -1}, "between 0.0 and"),
        ({"first_segment_id": 1.5}, "integer"),
        ({"channels": 2, "channel_labels": "agent"}, "each of the 2 channel(s) once"),
        ({"channels": "2", "channel_labels": "a,a"}, "once"),
        ({"channel_labels": "agent,caller"}, "each of the 1 channel(s)"),
        ({"channels": 2, "channel_labels": "agent," + "x" * 65}, "at most 64"),
        ({"encoding": "alaw8"}, "alaw"),
    ],
)
def test_bad_options_are_refused_naming_the_problem(raw, needle):
    with pytest.raises(ProtocolError) as error:
        parse_options(raw, SessionOptions(), LANGS)
    assert error.value.code == "invalid_config" and error.value.fatal
    assert needle in error.value.message


def test_english_only_models_transcribe_english_and_nothing_else():
    assert english_only_refusal("tiny.en", False, None, "transcribe") is None
    assert english_only_refusal("tiny.en", False, "en", "transcribe") is None
    assert "transcribe language 'de'" in english_only_refusal("tiny.en", False, "de", "transcribe")
    assert "cannot translate" in english_only_refusal("tiny.en", False, None, "translate")
    assert english_only_refusal("base", True, "de", "translate") is None
    assert english_only_refusal("my-model", None, "de", "translate") is None  # not known until loaded


def _parse(argv, environ):
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return from_namespace(parser.parse_args(argv), environ)


def test_config_from_flags_and_environment():
    assert _parse([], {}) == ServerConfig()
    config = _parse(
        ["--port", "9000", "--api-key", "a", "--api-key", "b,c"],
        {"STT_GATEWAY_PORT": "7000", "STT_GATEWAY_MODEL": "tiny.en", "STT_GATEWAY_SPECULATIVE_FINAL": "false", "STT_GATEWAY_API_KEYS": "x"},
    )
    assert config.port == 9000  # the flag wins
    assert config.model == "tiny.en" and config.speculative_final is False
    assert config.api_keys == ("a", "b", "c")
    assert _parse([], {"STT_GATEWAY_API_KEYS": "k1, k2"}).api_keys == ("k1", "k2")
    assert "k1" not in _parse([], {"STT_GATEWAY_API_KEYS": "k1"}).describe()
    with pytest.raises(SystemExit, match="STT_GATEWAY_PORT"):
        _parse([], {"STT_GATEWAY_PORT": "eighty"})


def test_diarize_is_a_flag_and_openais_diarizing_model_asks_for_it():
    langs = {"en"}
    assert parse_options({"diarize": "true"}, SessionOptions(), langs).diarize is True
    assert parse_options({}, SessionOptions(), langs).diarize is False
    assert parse_options({"model": "gpt-4o-transcribe-diarize"}, SessionOptions(), langs).diarize is True
    assert parse_options({"model": "gpt-4o-transcribe-diarize-2025-10-15"}, SessionOptions(), langs).diarize is True
    assert parse_options({"model": "gpt-4o-transcribe-diarize", "diarize": "false"}, SessionOptions(), langs).diarize is False
    assert parse_options({"model": "gpt-4o-transcribe"}, SessionOptions(), langs).diarize is False
    with pytest.raises(ProtocolError, match="diarize"):
        parse_options({"diarize": "often"}, SessionOptions(), langs)
