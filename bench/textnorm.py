"""Text normalisation for word error rates (tests and benchmarks share it).

Whisper writes "18 13", "Mr." and punctuation where references say
"EIGHTEEN THIRTEEN" or "mister"; both sides go through the same light
normalisation (case, punctuation, contractions, number words as digits, a few
spellings) so that WER counts words, not typography.
"""

from __future__ import annotations

import re
import unicodedata

_SPELLINGS = {"mr": "mister", "mrs": "missus", "dr": "doctor", "st": "saint", "okay": "ok"}
_CONTRACTIONS = {
    "i'm": "i am", "you're": "you are", "we're": "we are", "they're": "they are",
    "it's": "it is", "that's": "that is", "there's": "there is", "here's": "here is",
    "what's": "what is", "let's": "let us", "can't": "cannot", "won't": "will not",
    "i've": "i have", "we've": "we have", "i'll": "i will", "i'd": "i would",
}


_NUMBERS = {
    w: str(i)
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
        "fifteen sixteen seventeen eighteen nineteen".split()
    )
}
_NUMBERS.update({w: str(10 * i) for i, w in enumerate("twenty thirty forty fifty sixty seventy eighty ninety".split(), start=2)})
_NUMBERS["oh"] = "0"  # digits read out ("nine oh two")


def normalize(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower()
    text = text.replace("’", "'").replace("‘", "'")
    text = re.sub(r"[^\w\s']", " ", text)
    text = re.sub(r"(?<!\w)'|'(?!\w)", " ", text)
    words = [_SPELLINGS.get(w, w) for w in text.split()]
    words = [_CONTRACTIONS.get(w, w.replace("n't", " not")) for w in words]
    # Whisper writes "1, 2, 3" or "0001" where references say "one two three"
    # or "zero zero zero one": spell both sides as digits, one word at a time,
    # then one digit per word, so that "0001" and "zero zero zero one" agree
    # and a wrong digit in a long number costs one error, not the number.
    words = [_NUMBERS.get(w, w) for w in " ".join(words).split()]
    words = [d for w in words for d in (list(w) if w.isdigit() else [w])]
    return " ".join(words)


def wer(reference: str, hypothesis: str) -> float:
    import jiwer

    ref, hyp = normalize(reference), normalize(hypothesis)
    if not ref:
        return 0.0 if not hyp else 1.0
    return jiwer.wer(ref, hyp)


def word_errors(reference: str, hypothesis: str) -> tuple[int, int]:
    """(errors, reference words), for corpus-level WER over many clips."""
    import jiwer

    ref, hyp = normalize(reference), normalize(hypothesis)
    if not ref:
        return (len(hyp.split()), 0)
    out = jiwer.process_words(ref, hyp)
    return out.substitutions + out.deletions + out.insertions, len(ref.split())
