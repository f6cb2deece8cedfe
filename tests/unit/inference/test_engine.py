"""The engine's scheduling, with a scripted decoder and clock: model-free."""

from __future__ import annotations

import collections
import contextlib
import threading
import time

import numpy as np
import pytest

from gateway.inference.engine import Engine, EngineClosed
from gateway.inference.jobs import DecodeJob, Priority
from gateway.inference.records import DecodeOptions


class RecordingDecoder:
    """Stands in for the model: records the order of work, waits for a gate."""

    def __init__(self):
        self.order: list[str] = []
        self.gate = threading.Event()
        self.started = threading.Event()

    def decode(self, audio, options):
        self.order.append(options.prompt)  # in the order work started
        self.started.set()
        self.gate.wait(10)
        return options.prompt


class ScriptedRegistry:
    class settings:
        workers = 1

    def resolve(self, name):
        return "fake"


def blocked_engine():
    """A one-worker engine whose worker is busy with a final ("blocker")
    until ``decoder.gate`` opens, so that what is submitted next queues."""
    engine, decoder = scripted_engine()
    engine.submit(job("blocker", Priority.FINAL))
    decoder.started.wait(5)
    return engine, decoder


def scripted_engine(workers: int = 1, background_workers: int | None = None):
    decoder = RecordingDecoder()
    engine = Engine(
        ScriptedRegistry(), workers=workers, decoder_factory=lambda model_id: decoder, background_workers=background_workers
    )
    return engine, decoder


def open_streams(engine: Engine, n: int) -> contextlib.ExitStack:
    """``n`` live streams' leases, held until the stack closes."""
    stack = contextlib.ExitStack()
    for _ in range(n):
        stack.enter_context(engine.stream_lease())
    return stack


def job(label: str, priority: Priority, stream: str | None = None) -> DecodeJob:
    return DecodeJob(np.zeros(160, np.float32), DecodeOptions(prompt=label), priority, stream=stream)


def test_finals_first_then_partials_then_batch():
    engine, decoder = blocked_engine()
    futures = [
        engine.submit(job("batch", Priority.BATCH)),
        engine.submit(job("partial", Priority.PARTIAL, "s1")),
        engine.submit(job("final-1", Priority.FINAL, "s1")),
        engine.submit(job("final-2", Priority.FINAL, "s2")),
    ]
    decoder.gate.set()
    for f in futures:
        f.result(10)
    assert decoder.order == ["blocker", "final-1", "final-2", "partial", "batch"]
    engine.close()


def test_a_newer_partial_replaces_the_pending_one_of_its_stream():
    engine, decoder = blocked_engine()
    old = engine.submit(job("old", Priority.PARTIAL, "s1"))
    other = engine.submit(job("other-stream", Priority.PARTIAL, "s2"))
    new = engine.submit(job("new", Priority.PARTIAL, "s1"))
    assert old.cancelled()
    decoder.gate.set()
    assert new.result(10) == "new" and other.result(10) == "other-stream"
    assert "old" not in decoder.order
    engine.close()


def test_partials_and_batch_never_take_the_last_free_worker_while_streams_are_open():
    engine, decoder = scripted_engine(workers=2)
    streams = open_streams(engine, 3)
    background = [engine.submit(job(f"partial-{i}", Priority.PARTIAL, f"s{i}")) for i in range(3)]
    background.append(engine.submit(job("batch", Priority.BATCH)))
    decoder.started.wait(5)
    time.sleep(0.2)
    assert engine.load(max_age_s=0).busy == 1
    final = engine.submit(job("final", Priority.FINAL))
    time.sleep(0.2)
    assert engine.load(max_age_s=0).busy == 2  # the final started at once
    decoder.gate.set()
    final.result(10)
    for f in background:
        f.result(10)
    assert decoder.order[:2] == ["partial-0", "final"]
    streams.close()
    assert engine.live_streams == 0
    engine.close()


class OneByOneDecoder(RecordingDecoder):
    """Each decode waits for its own release, so that one worker at a time can be freed."""

    def __init__(self):
        super().__init__()
        self.release: collections.defaultdict[str, threading.Event] = collections.defaultdict(threading.Event)

    def decode(self, audio, options):
        self.order.append(options.prompt)
        self.started.set()
        self.release[options.prompt].wait(10)
        return options.prompt

    def wait_started(self, count: int) -> None:
        deadline = time.monotonic() + 10
        while len(self.order) < count:
            assert time.monotonic() < deadline, f"only {self.order} started"
            time.sleep(0.01)


def test_partials_may_take_every_worker_when_told_and_a_final_takes_the_first_free_one():
    decoder = OneByOneDecoder()
    engine = Engine(ScriptedRegistry(), workers=2, decoder_factory=lambda model_id: decoder, background_workers=2)
    streams = open_streams(engine, 3)
    partials = [engine.submit(job(f"partial-{i}", Priority.PARTIAL, f"s{i}")) for i in range(3)]
    decoder.wait_started(2)
    assert engine.load(max_age_s=0).busy == 2  # both workers on partials
    final = engine.submit(job("final", Priority.FINAL))
    decoder.release["partial-0"].set()  # one worker frees up: it takes the final, not the third partial
    decoder.wait_started(3)
    assert set(decoder.order[:2]) == {"partial-0", "partial-1"} and decoder.order[2] == "final"
    for label in ("partial-1", "final", "partial-2"):
        decoder.release[label].set()
    final.result(10)
    for f in partials:
        f.result(10)
    streams.close()
    engine.close()


def test_background_workers_are_at_most_the_workers_and_never_negative():
    engine, _ = scripted_engine(workers=2, background_workers=5)
    assert engine.background_workers == 2
    engine.close()
    with pytest.raises(ValueError, match="partial workers"):
        scripted_engine(workers=2, background_workers=-1)


def batch_beside_an_open_stream():
    """Two workers, one live stream's lease, three batch chunks queued."""
    engine, decoder = scripted_engine(workers=2)
    stream = open_streams(engine, 1)
    batch = [engine.submit(job(f"batch-{i}", Priority.BATCH)) for i in range(3)]
    decoder.started.wait(5)
    time.sleep(0.2)
    assert engine.load(max_age_s=0).busy == 1  # the second worker stays free for live work
    return engine, decoder, stream, batch


def test_batch_never_takes_the_last_free_worker_while_streams_are_open():
    engine, decoder, stream, batch = batch_beside_an_open_stream()
    final = engine.submit(job("final", Priority.FINAL))
    time.sleep(0.2)
    assert engine.load(max_age_s=0).busy == 2
    decoder.gate.set()
    final.result(10)
    for f in batch:
        f.result(10)
    stream.close()
    engine.close()


def test_when_the_last_stream_closes_batch_takes_every_worker_again():
    engine, decoder, stream, batch = batch_beside_an_open_stream()
    stream.close()  # wakes the idle worker: nothing else would
    time.sleep(0.2)
    assert engine.load(max_age_s=0).busy == 2
    decoder.gate.set()
    for f in batch:
        f.result(10)
    engine.close()


def test_cancelled_jobs_are_skipped_and_errors_reach_the_caller():
    engine, decoder = blocked_engine()
    doomed = engine.submit(job("doomed", Priority.FINAL))
    assert doomed.cancel()

    def explode(audio, options):
        raise RuntimeError("boom")

    decoder.gate.set()
    time.sleep(0.1)
    decoder.decode = explode
    failing = engine.submit(job("x", Priority.FINAL))
    with pytest.raises(RuntimeError, match="boom"):
        failing.result(10)
    assert "doomed" not in decoder.order
    engine.close()
    with pytest.raises(EngineClosed):
        engine.submit(job("late", Priority.FINAL))


def test_with_no_stream_open_batch_uses_every_worker():
    engine, decoder = scripted_engine(workers=2)
    batch = [engine.submit(job(f"batch-{i}", Priority.BATCH)) for i in range(3)]
    decoder.started.wait(5)
    time.sleep(0.2)
    assert engine.load(max_age_s=0).busy == 2
    decoder.gate.set()
    for f in batch:
        f.result(10)
    engine.close()


def test_a_promoted_speculation_overtakes_everything_but_finals():
    engine, decoder = blocked_engine()
    partial = engine.submit(job("partial", Priority.PARTIAL, "s1"))
    speculation = engine.submit(job("speculation", Priority.SPECULATIVE, "s2"))
    other = engine.submit(job("other-speculation", Priority.SPECULATIVE, "s3"))
    final = engine.submit(job("final", Priority.FINAL, "s4"))
    engine.promote(other)
    assert engine.load(max_age_s=0).pending_finals == 3
    decoder.gate.set()
    for f in (partial, speculation, other, final):
        f.result(10)
    assert decoder.order == ["blocker", "final", "other-speculation", "speculation", "partial"]
    engine.close()


class ScriptedClock:
    """Time that passes only when a scripted decode says how long it took."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_final_decode_time_is_the_median_of_the_latest_finals():
    clock = ScriptedClock()

    class TimedDecoder:
        def decode(self, audio, options):
            clock.now += float(options.prompt)  # the job says how long it takes
            return options.prompt

    engine = Engine(ScriptedRegistry(), workers=1, decoder_factory=lambda model_id: TimedDecoder(), clock=clock)
    # Slow finals long ago, then fast speculations, and partials that must not count.
    jobs = [DecodeJob(np.zeros(160, np.float32), DecodeOptions(prompt="1.0"), Priority.FINAL) for _ in range(100)]
    for i in range(64):
        jobs.append(DecodeJob(np.zeros(160, np.float32), DecodeOptions(prompt=f"{0.1 + 0.001 * i}"), Priority.SPECULATIVE))
        jobs.append(DecodeJob(np.zeros(160, np.float32), DecodeOptions(prompt="5.0"), Priority.PARTIAL))
    for j in jobs:  # one at a time, in this order
        engine.submit(j).result(10)
    assert engine.load(max_age_s=0).final_decode_s == pytest.approx(0.132)
    engine.close()


def test_a_cancelled_partial_of_a_closed_stream_is_not_kept():
    import gc
    import weakref

    engine, decoder = blocked_engine()
    doomed = job("partial", Priority.PARTIAL, "closed-stream")
    kept = weakref.ref(doomed)
    engine.submit(doomed).cancel()  # the stream closed before its partial ran
    del doomed
    decoder.gate.set()
    engine.submit(job("after", Priority.FINAL)).result(10)
    engine.submit(job("after", Priority.PARTIAL, "other")).result(10)  # the cancelled one reached the head and went
    gc.collect()
    assert kept() is None, "the engine still holds the audio of a partial that will never run"
    engine.close()


def test_replaced_partials_do_not_pile_up_while_finals_hold_the_workers():
    import gc
    import weakref

    engine, decoder = blocked_engine()
    refs = []
    for i in range(2000):  # 2000 partial updates of 20 streams while one final runs
        j = job(f"p{i}", Priority.PARTIAL, f"s{i % 20}")
        refs.append(weakref.ref(j))
        engine.submit(j)
        del j
    gc.collect()
    alive = sum(r() is not None for r in refs)
    assert alive <= 300, alive  # the live partial of each stream, and at most one sweep's worth of dead ones
    decoder.gate.set()
    engine.close()


def test_an_upload_is_not_starved_by_partials_that_never_stop():
    clock = ScriptedClock()
    gate = threading.Event()

    class Decoder:
        def __init__(self):
            self.order = []

        def decode(self, audio, options):
            if options.prompt == "blocker":
                gate.wait(10)
            self.order.append(options.prompt)
            clock.now += 0.4  # every decode takes 0.4 s of the engine's time
            return options.prompt

    decoder = Decoder()
    engine = Engine(ScriptedRegistry(), workers=1, decoder_factory=lambda model_id: decoder, clock=clock)
    left = [40]

    def next_partial(stream):  # at capacity a stream's next partial is always waiting
        def done(_):
            if left[0] > 0:
                left[0] -= 1
                engine.submit(job("partial", Priority.PARTIAL, stream)).add_done_callback(next_partial(stream))

        return done

    with open_streams(engine, 1):
        engine.submit(job("blocker", Priority.FINAL))
        upload = engine.submit(job("upload", Priority.BATCH))
        for stream in ("s0", "s1"):
            engine.submit(job("partial", Priority.PARTIAL, stream)).add_done_callback(next_partial(stream))
        gate.set()
        upload.result(10)
    # It waited about BATCH_AGING_S (5 s: a dozen decodes), then went before the partials.
    assert decoder.order.index("upload") < 20, decoder.order
    engine.close()


class RecordingEncoder:
    """Stands in for the speaker encoder: one window per call, its value the span's length."""

    def __init__(self, order: list[str]):
        self.order = order

    def embed_windows(self, samples, hop_s=0.75):
        self.order.append(f"embed-{samples.shape[0]}")
        if samples.shape[0] == 0:
            raise ValueError("nothing to embed")
        return np.full((1, 256), float(samples.shape[0])), np.array([samples.shape[0] / 2 / 16000])


def test_speaker_embeddings_queue_with_their_priority_and_come_back_in_the_audios_time():
    from gateway.inference.jobs import EmbedJob, VoiceWindows

    decoder = RecordingDecoder()
    loads: list[int] = []

    def encoder():
        loads.append(1)
        return RecordingEncoder(decoder.order)

    engine = Engine(ScriptedRegistry(), workers=1, decoder_factory=lambda model_id: decoder, encoder_factory=encoder)
    engine.submit(job("blocker", Priority.FINAL))
    decoder.started.wait(5)
    audio = np.zeros(32000, np.float32)
    batch = engine.submit(job("batch", Priority.BATCH))
    embedded = engine.submit(EmbedJob(audio, ((0, 8000), (16000, 32000)), Priority.FINAL))
    partial = engine.submit(job("partial", Priority.PARTIAL, "s1"))
    decoder.gate.set()
    voices = embedded.result(10)
    batch.result(10), partial.result(10)
    assert decoder.order == ["blocker", "embed-8000", "embed-16000", "partial", "batch"]  # the final's class: before the others
    assert isinstance(voices, VoiceWindows)
    assert voices.embeddings[:, 0].tolist() == [8000.0, 16000.0]
    assert voices.centres.tolist() == [0.25, 1.5]  # each span's window, in seconds from the job's audio
    engine.submit(EmbedJob(audio, ((0, 8000),), Priority.BATCH)).result(10)
    assert loads == [1]  # the encoder is loaded once, at the first embedding
    nothing = engine.submit(EmbedJob(audio, ((4000, 4000), (0, 0)), Priority.BATCH))
    assert nothing.result(10).embeddings.shape == (0, 256)  # empty spans: no windows, no call
    assert "embed-0" not in decoder.order
    engine.close()


def test_a_speaker_embedding_that_fails_fails_its_future_only():
    from gateway.inference.jobs import EmbedJob

    class Broken:
        def embed_windows(self, samples, hop_s=0.75):
            raise RuntimeError("no weights")

    decoder = RecordingDecoder()
    decoder.gate.set()
    engine = Engine(ScriptedRegistry(), workers=1, decoder_factory=lambda model_id: decoder, encoder_factory=Broken)
    with pytest.raises(RuntimeError, match="no weights"):
        engine.submit(EmbedJob(np.zeros(1600, np.float32), ((0, 1600),), Priority.BATCH)).result(10)
    assert engine.submit(job("after", Priority.FINAL)).result(10) == "after"
    engine.close()
