"""Redaction of sensitive numbers on synthetic calls: what leaks, and what is wrongly hidden (issue 24).

    python -m bench.redaction                         # bench/results/redaction.json
    python -m bench.redaction --calls 3 --models tiny.en   # a quicker look

No recording of the shared speech set reads out a card number, so the
calls are synthetic: espeak-ng (Debian's package) reads each call with one
of several voices and speeds. A call is a greeting and eight sentences in
a random order, 0.7 s apart: four sensitive (a card number of 16 digits,
Visa or Mastercard, or 15, Amex, read in groups; then, by call, its expiry
date and security code, a US social security number, a US or UK phone
number, an e-mail address spelled as said) and four decoys that must stay
(a price, a quantity, a date, an account balance). The generated numbers
are random but valid (Luhn, SSN area rules, phone lengths). Seed 0's calls
tuned the detector (what the models made of them is in its tests); seed
1's did not.

Each call is transcribed by the batch path (an upload's) and by a native
stream's session (audio as fast as the engine takes it, its work carried
out as a runner does), with ``redact=pci,ssn,phone,email``, and scored
sentence by sentence from the words whose middle lies in the sentence's
time span:

- **recall** of a sensitive sentence: none of its digits left (no run of
  3 digits or more, written or spelled) and, for an e-mail, no part of the
  address; counted by kind (goal: 100 % for card numbers and SSNs);
- **decoys kept**: a decoy sentence still shows its number and no
  placeholder (goal: 95 % or more);
- live only, **partials**: how many partials showed three or more digits of
  a sensitive number of their call (goal: none); the audio is paced at
  twice real time so that partials are decoded as in a call.
"""

from __future__ import annotations

import argparse
import random
import re
import subprocess
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from stdnum import luhn

from gateway.audio import decode_file
from gateway.core.events import TranscriptFinal, TranscriptPartial
from gateway.core.options import SessionOptions
from gateway.core.records import Segment
from gateway.files.transcription import BatchRequest, transcribe
from gateway.inference.engine import Engine
from gateway.inference.models import LoadSettings, ModelRegistry
from redaction.spoken import number_runs

from .diarization import stream_events
from .streaming import RESULTS, run_stamp, write_results

SR = 16000
KINDS = ("pci", "ssn", "phone", "email")
VOICES = ("en-us", "en-gb", "en-us+m3", "en-us+f2")
SPEEDS = (140, 165, 190)
GAP_S = 0.7
DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
FIRST_NAMES = ("jane", "peter", "maria", "john", "susan", "david", "linda", "robert")
LAST_NAMES = ("miller", "smith", "garcia", "brown", "wilson", "taylor", "clark", "lewis")
DOMAINS = ("example", "mailbox", "fastmail", "acme")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December")


def espeak(text: str, voice: str = "en-us", speed: int = 165) -> np.ndarray:
    """``text`` read by espeak-ng: float32 mono 16 kHz samples."""
    wav = subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(speed), "--stdout", text], capture_output=True, check=True, timeout=120
    ).stdout
    return decode_file(wav)


# -- what a call says ------------------------------------------------------------
@dataclass(frozen=True)
class Sentence:
    kind: str  # pci, ssn, phone, email, or decoy
    text: str  # what espeak-ng reads
    secret: str  # the digits (or, for an e-mail, the address's words) that must not be shown; a decoy's number


def spelled(digits: str, groups: tuple[int, ...]) -> str:
    """Digits read one by one, in groups: "four one one one, one one ..."."""
    out, at = [], 0
    for size in groups:
        out.append(" ".join(DIGIT_WORDS[int(d)] for d in digits[at : at + size]))
        at += size
    return ", ".join(out)


def card_number(rng: random.Random) -> tuple[str, tuple[int, ...]]:
    if rng.random() < 0.33:  # Amex: 15 digits, read 4-6-5
        body = rng.choice(("34", "37")) + "".join(rng.choice("0123456789") for _ in range(12))
        groups: tuple[int, ...] = (4, 6, 5)
    else:  # Visa or Mastercard: 16 digits, read 4-4-4-4
        body = rng.choice(("4", "51", "52", "55")) + "".join(rng.choice("0123456789") for _ in range(15))
        body = body[:15]
        groups = (4, 4, 4, 4)
    return body + luhn.calc_check_digit(body), groups


def call_sentences(rng: random.Random) -> list[Sentence]:
    digits = lambda n: "".join(rng.choice("0123456789") for _ in range(n))  # noqa: E731 - a one-line helper
    card, groups = card_number(rng)
    month, year = rng.randint(1, 12), rng.randint(25, 32)
    cvv = digits(4 if len(card) == 15 else 3)
    area = rng.choice([a for a in range(1, 900) if a != 666])
    ssn = f"{area:03d}{rng.randint(1, 99):02d}{rng.randint(1, 9999):04d}"
    if rng.random() < 0.6:
        phone = f"{rng.randint(2, 9)}{digits(2)}{rng.randint(2, 9)}{digits(6)}"
        phone_text, phone_groups = rng.choice(("You can call me at {}.", "My phone number is {}.", "Reach me on {}.")), (3, 3, 4)
    else:
        phone = "07" + digits(9)
        phone_text, phone_groups = rng.choice(("My mobile is {}.", "Call me back on {}.")), (5, 6)
    first, last, domain = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES), rng.choice(DOMAINS)
    sensitive = [
        Sentence("pci", rng.choice(("My card number is {}.", "The card number is {}.", "It's a credit card, {}.")).format(spelled(card, groups)), card),
        rng.choice([
            Sentence("pci", f"It expires {spelled(f'{month:02d}', (2,))}, {year_words(year)}.", f"{month:02d}{year}"),
            Sentence("pci", f"The security code is {spelled(cvv, (len(cvv),))}.", cvv),
        ]),
        Sentence("ssn", rng.choice(("My social security number is {}.", "My social is {}.")).format(spelled(ssn, (3, 2, 4))), ssn),
        rng.choice([
            Sentence("phone", phone_text.format(spelled(phone, phone_groups)), phone),
            Sentence("email", f"My email is {first} dot {last} at {domain} dot com.", f"{first} {last}"),
        ]),
    ]
    price, cents = rng.randint(12, 950), rng.randint(10, 99)
    decoys = [
        Sentence("decoy", f"The total comes to {price} dollars and {cents} cents.", str(price)),
        Sentence("decoy", f"I ordered {rng.randint(120, 900)} chairs for the new office.", ""),
        Sentence("decoy", f"The meeting is on {rng.choice(MONTHS)} {rng.randint(3, 28)}, {rng.randint(2019, 2027)}.", ""),
        Sentence("decoy", f"Your balance is {rng.randint(1, 9)},{rng.randint(100, 999)} dollars.", ""),
    ]
    body = sensitive + decoys
    rng.shuffle(body)
    return [Sentence("greeting", "Thank you for calling, how can I help you today?", "")] + body


def year_words(year: int) -> str:
    tens = ("twenty", "thirty")[year // 10 - 2]
    return tens + ("" if year % 10 == 0 else " " + DIGIT_WORDS[year % 10])


@dataclass(frozen=True)
class Call:
    voice: str
    speed: int
    sentences: list[Sentence]
    spans: list[tuple[float, float]]  # each sentence's time in the call (seconds)
    samples: np.ndarray


def make_call(rng: random.Random, voice: str, speed: int) -> Call:
    sentences = call_sentences(rng)
    parts, spans, at = [], [], 0.0
    for s in sentences:
        audio = espeak(s.text, voice, speed)
        parts += [audio, np.zeros(int(GAP_S * SR), np.float32)]
        spans.append((at, at + audio.size / SR))
        at += audio.size / SR + GAP_S
    return Call(voice, speed, sentences, spans, np.concatenate(parts + [np.zeros(SR, np.float32)]))


# -- scoring -------------------------------------------------------------------------
def words_in(segments: list[Segment], span: tuple[float, float]) -> list[str]:
    start, end = span
    return [w.word for s in segments for w in s.words if start - 0.3 <= (w.start + w.end) / 2 <= end + 0.3]


def leaks(sentence: Sentence, words: list[str]) -> bool:
    """Whether a sensitive sentence's transcript still shows what it said."""
    if sentence.kind == "email":
        said = " ".join(words).lower()
        return "@" in said or any(part in said for part in sentence.secret.split())
    return any(len(run.digits) >= 3 for run in number_runs(words))


def kept(words: list[str]) -> bool:
    """Whether a decoy's transcript still shows its number, and no placeholder."""
    return any(number_runs(words)) and not any("[" in w for w in words)


def shown_secret(text: str, call: Call) -> bool:
    """Whether a partial's text shows three or more digits of a sensitive number of its call."""
    secrets = [s.secret for s in call.sentences if s.kind in ("pci", "ssn", "phone")]
    decoy_digits = "".join(re.sub(r"\D", "", s.text) for s in call.sentences if s.kind == "decoy")
    for run in number_runs(text.split()):
        if len(run.digits) >= 3 and any(run.digits in x for x in secrets) and run.digits not in decoy_digits:
            return True
    return False


def score(call: Call, segments: list[Segment], tally: dict) -> list[dict]:
    """Each sentence's result added to ``tally`` (by kind); the sentences that failed."""
    failed = []
    for sentence, span in zip(call.sentences, call.spans, strict=True):
        words = words_in(segments, span)
        if sentence.kind in KINDS:
            ok = not leaks(sentence, words)
        elif sentence.kind == "decoy":
            ok = kept(words)
        else:
            continue
        tally[sentence.kind].append(ok)
        if not ok:
            failed.append({"kind": sentence.kind, "said": sentence.text, "heard": "".join(words)})
    return failed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["tiny.en", "base"])
    parser.add_argument("--calls", type=int, default=12, help="calls per model (voices and speeds in turn)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="which calls (seed 0 tuned the detector)")
    parser.add_argument("--paths", nargs="+", default=["batch", "live"], choices=["batch", "live"])
    parser.add_argument("--live-speed", type=float, default=2.0, help="live audio at this many times real time (partials need pacing)")
    parser.add_argument("--out", type=Path, default=RESULTS / "redaction.json")
    args = parser.parse_args(argv)

    by_seed = {}
    for seed in args.seeds:
        rng = random.Random(seed)
        by_seed[seed] = [make_call(rng, VOICES[i % len(VOICES)], SPEEDS[i % len(SPEEDS)]) for i in range(args.calls)]
    rows, misses = [], []
    for model in args.models:
        engine = Engine(ModelRegistry(model, LoadSettings()))
        for seed, path in ((seed, path) for seed in args.seeds for path in args.paths):
            calls = by_seed[seed]
            audio_s = sum(c.samples.size for c in calls) / SR
            tally: dict[str, list[bool]] = defaultdict(list)
            partials = partials_showing = 0
            for k, call in enumerate(calls):
                if path == "batch":
                    request = BatchRequest(model=model, language="en", word_timestamps=True, redact=KINDS)
                    segments = transcribe(engine, call.samples, request).segments
                else:
                    options = SessionOptions(model=model, language="en", redact=KINDS)
                    events = stream_events(engine, options, call.samples, speed=args.live_speed)
                    segments = [e.segment for e in events if isinstance(e, TranscriptFinal)]
                    shown = [e for e in events if isinstance(e, TranscriptPartial)]
                    partials += len(shown)
                    partials_showing += sum(shown_secret(p.text, call) or shown_secret(p.stable_text, call) for p in shown)
                for failed in score(call, segments, tally):
                    misses.append({"model": model, "path": path, "seed": seed, "call": k} | failed)
                    print(f"  missed {failed}", flush=True)
                print(f"{model} {path} seed {seed} call {k} ({call.voice}, {call.speed} wpm): "
                      + ", ".join(f"{kind} {sum(v)}/{len(v)}" for kind, v in sorted(tally.items())), flush=True)
            row = {
                "model": model, "path": path, "seed": seed, "calls": len(calls), "audio_s": round(audio_s, 1),
                "recall": {kind: sum(tally[kind]) / len(tally[kind]) for kind in KINDS if tally[kind]},
                "sentences": {kind: len(tally[kind]) for kind in (*KINDS, "decoy")},
                "decoys_kept": sum(tally["decoy"]) / len(tally["decoy"]),
            }
            if path == "live":
                row["partials"] = partials
                row["partials_showing_digits"] = partials_showing
            rows.append(row)
        engine.close()
    body = {
        "benchmark": "redaction of card numbers, SSNs, phone numbers and e-mails in synthetic calls (espeak-ng), batch and live",
        **run_stamp(),
        "redact": list(KINDS),
        "voices": list(VOICES), "speeds_wpm": list(SPEEDS),
        "rows": rows,
        "misses": misses,
    }
    write_results(args.out, body)
    print(table(body))
    print(f"results: {args.out}")
    return 0


def table(body: dict) -> str:
    lines = [
        "| model | path | calls (seed) | card, expiry, CVV | SSN | phone | e-mail | decoys kept | partials showing digits |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in body["rows"]:
        recall = [f"{100 * r['recall'][k]:.0f} % ({r['sentences'][k]})" if k in r["recall"] else "-" for k in KINDS]
        shown = f"{r['partials_showing_digits']} of {r['partials']}" if "partials" in r else "-"
        lines.append(f"| {r['model']} | {r['path']} | {r['calls']} ({r['seed']}) | " + " | ".join(recall)
                     + f" | {100 * r['decoys_kept']:.0f} % ({r['sentences']['decoy']}) | {shown} |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
