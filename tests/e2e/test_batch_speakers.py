"""Speaker labels in batch (contract section 9): a real server, the real
speaker model, three real voices taking turns, the official openai client."""

from __future__ import annotations

import base64

import httpx
import numpy as np
import pytest

from tests.clips import TURNS, load_clip, turns_of, wav_bytes

SR = 16000
# The voices of TURNS in the order they are first heard: leopard-en, ds-arctic-a0024, lhotse-libri.
FIRST_HEARD = ["leopard-en", "ds-arctic-a0024", "lhotse-libri-2412-153948-0000"]


@pytest.fixture(scope="module")
def conversation() -> tuple[bytes, list[tuple[float, float, str]]]:
    audio, turns = turns_of(*TURNS)
    return wav_bytes(audio), turns


def post(base: str, data: dict, file: bytes, **kwargs) -> httpx.Response:
    return httpx.post(
        base + "/v0/audio/transcriptions", data={"model": "whisper-1"} | data,
        files={"file": ("talk.wav", file, "audio/wav")}, timeout=120, **kwargs,
    )


def data_url(samples: np.ndarray) -> str:
    return "data:audio/wav;base64," + base64.b64encode(wav_bytes(samples)).decode()


def speaker_of_turns(words: list[dict], turns: list[tuple[float, float, str]]) -> list[set[str]]:
    """The speakers carried by the words inside each turn."""
    return [{w["speaker"] for w in words if start - 0.05 <= w["start"] and w["end"] <= end + 0.05} for start, end, _ in turns]


def test_three_voices_taking_turns_are_labelled_per_turn(server, conversation):
    wav, turns = conversation
    r = post(server.http, {"diarize": "true", "timestamp_granularities[]": "word"}, wav)
    assert r.status_code == 200, r.text
    body = r.json()
    expected = {clip: "ABC"[i] for i, clip in enumerate(FIRST_HEARD)}  # letters in order of first appearance
    assert speaker_of_turns(body["words"], turns) == [{expected[clip]} for _, _, clip in turns]
    # every segment holds one speaker, its words the same one
    for segment in body["segments"]:
        assert segment["speaker"] in "ABC"
        inside = [w for w in body["words"] if segment["start"] - 0.01 <= w["start"] and w["end"] <= segment["end"] + 0.01]
        assert {w["speaker"] for w in inside} <= {segment["speaker"]}, segment
    assert [s["id"] for s in body["segments"]] == list(range(len(body["segments"])))
    assert body["text"] == "".join(s["text"] for s in body["segments"]).strip()
    assert all(s["tokens"] for s in body["segments"])


def test_subtitles_name_the_speaker_of_each_cue(server, conversation):
    wav, _ = conversation
    srt = post(server.http, {"diarize": "true", "response_format": "srt"}, wav).text
    lines = [line for line in srt.splitlines() if ": " in line]
    assert lines[0].startswith("A: Mr. Quilter") and any(line.startswith("B: It was my reports") for line in lines), srt
    vtt = post(server.http, {"diarize": "true", "response_format": "vtt"}, wav).text
    assert "<v A>Mr. Quilter" in vtt and "<v C>" in vtt, vtt


def test_the_openai_client_gets_diarized_json_and_names_a_known_voice(server, conversation):
    """gpt-4o-transcribe-diarize with diarized_json, as OpenAI's clients ask for it; a reference clip
    (3 s of the Quilter reader's clip) names that voice, the others are lettered in order of appearance."""
    from openai import OpenAI

    wav, turns = conversation
    client = OpenAI(base_url=f"{server.http}/v1", api_key="unused", max_retries=0, timeout=120)
    reference = load_clip("leopard-en")[: 3 * SR]
    result = client.audio.transcriptions.create(
        file=("talk.wav", wav, "audio/wav"), model="gpt-4o-transcribe-diarize", response_format="diarized_json",
        known_speaker_names=["quilter_reader"], known_speaker_references=[data_url(reference)],
    )
    assert all(s.type == "transcript.text.segment" and s.id.startswith("seg_") for s in result.segments)
    said = [(s.speaker, s.start, s.end) for s in result.segments]
    names = {"leopard-en": "quilter_reader", "ds-arctic-a0024": "A", "lhotse-libri-2412-153948-0000": "B"}
    for start, end, clip in turns:
        heard = {speaker for speaker, s, e in said if s < end and e > start}
        assert heard == {names[clip]}, (clip, said)
    plain = client.audio.transcriptions.create(
        file=("talk.wav", wav, "audio/wav"), model="whisper-1", response_format="diarized_json",
    )
    assert [s.speaker for s in plain.segments][0] == "A"  # diarized_json on a mono file diarizes


def test_speakers_expected_and_a_single_voice(server, conversation):
    wav, turns = conversation
    body = post(server.http, {"diarize": "true", "speakers_expected": "3"}, wav).json()
    assert {s["speaker"] for s in body["segments"]} == {"A", "B", "C"}
    body = post(server.http, {"diarize": "true", "speakers_expected": "1"}, wav).json()
    assert {s["speaker"] for s in body["segments"]} == {"A"}
    one = post(server.http, {"diarize": "true"}, wav_bytes(load_clip("lhotse-libri-2412-153948-0000"))).json()
    assert {s["speaker"] for s in one["segments"]} == {"A"} and len(one["segments"]) >= 1


def test_audio_without_speech_has_no_speakers_and_no_error(server):
    r = post(server.http, {"diarize": "true"}, wav_bytes(np.zeros(3 * SR, np.float32)))
    assert r.status_code == 200, r.text
    assert r.json()["segments"] == []


def test_bad_diarization_fields_are_refused_naming_the_field(server):
    clip = wav_bytes(load_clip("ds-ldc93s1"))
    good = data_url(load_clip("leopard-en")[: 3 * SR])
    cases = [
        ({"diarize": "true", "speakers_expected": "9"}, "speakers_expected"),
        ({"diarize": "true", "speakers_expected": "-1"}, "speakers_expected"),
        ({"speakers_expected": "2"}, "speakers_expected"),  # without diarize
        ({"diarize": "true", "known_speaker_names[]": ["a", "b"], "known_speaker_references[]": [good]}, "known_speaker_names"),
        ({"diarize": "true", "known_speaker_names[]": ["a", "a"], "known_speaker_references[]": [good, good]}, "known_speaker_names"),
        ({"diarize": "true", "known_speaker_names[]": list("abcde"), "known_speaker_references[]": [good] * 5}, "known_speaker_references"),
        ({"diarize": "true", "known_speaker_names[]": ["a"], "known_speaker_references[]": [data_url(load_clip("leopard-en")[:SR])]},
         "known_speaker_references"),  # 1 s: too short
        ({"diarize": "true", "known_speaker_names[]": ["a"], "known_speaker_references[]": [data_url(np.zeros(11 * SR, np.float32))]},
         "known_speaker_references"),  # 11 s: too long
        ({"diarize": "true", "known_speaker_names[]": ["a"], "known_speaker_references[]": ["data:audio/wav;base64," + base64.b64encode(b"not audio").decode()]},
         "known_speaker_references"),
        ({"diarize": "true", "known_speaker_names[]": ["a"], "known_speaker_references[]": ["https://example.com/a.wav"]},
         "known_speaker_references"),
        ({"diarize": "true", "stream": "true"}, "stream"),
    ]
    for fields, param in cases:
        r = post(server.http, fields, clip)
        assert r.status_code == 400, (fields, r.text)
        assert r.json()["error"]["param"] == param, (fields, r.json())
