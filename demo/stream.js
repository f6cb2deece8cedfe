// One live stream over /v0/audio/stream: sends audio, receives events, measures latency,
// and resumes after a dropped connection (docs/protocol.md section 7): the audio since the last
// final is kept, and a new socket continues the transcript where that final ended.

import { readiness, streamEndpoint } from './api.js';

const REPLAY_S = 60; // audio kept for a resume, at most
const PROMPT_CHARS = 200; // the tail of the transcript that primes a resumed session
const OPEN_TIMEOUT_MS = 10000; // a socket that has not opened by then is a failed try
const BUSY_WAIT_S = 30; // the longest Retry-After honoured at a time
// How often and for how long to try again: after a drop (exponential backoff with jitter),
// and at the start while the server says it is busy (503 with Retry-After on /readyz).
const RESUME_RETRIES = { tries: 10, withinS: 60, firstS: 0.25, maxS: 5 };
const BUSY_RETRIES = { tries: 5, withinS: 150, firstS: BUSY_WAIT_S, maxS: BUSY_WAIT_S };

// When each sample was sent, so a final's audio `end` maps back to a wall-clock time.
// Audio time is samples / rate, as the server counts it, from the stream's first sample:
// a resumed connection starts counting at its time_offset.
export class SendClock {
  constructor(rate, firstSample = 0) {
    this.rate = rate;
    this.samples = firstSample;
    this.marks = []; // [samples sent so far, performance.now() of that send]
  }

  sent(samples, now) {
    this.samples += samples;
    this.marks.push([this.samples, now]);
  }

  // Wall time at which the sample at `seconds` left the page, or null if it never did.
  // Finals arrive in order, so marks before the asked time are no longer needed.
  timeOf(seconds) {
    const sample = Math.round((seconds - 0.001) * this.rate); // times come rounded to 1 ms
    while (this.marks.length > 1 && this.marks[0][0] < sample) this.marks.shift();
    const [sentUpTo, at] = this.marks[0] || [0, null];
    return sentUpTo >= sample ? at : null;
  }
}

// The audio of the stream from some sample on (pcm_s16le chunks), numbered from the stream's
// first sample. Bounded: beyond `maxSamples` the oldest chunks go, unless held (a socket is
// opening with a time_offset that the replay must start at).
export class ReplayBuffer {
  constructor(maxSamples) {
    this.maxSamples = maxSamples;
    this.chunks = []; // [{start: sample, data: ArrayBuffer}]
    this.start = 0; // the first sample kept
    this.end = 0; // one past the last sample captured
    this.held = false;
  }

  push(data) {
    this.chunks.push({ start: this.end, data });
    this.end += data.byteLength / 2;
    while (!this.held && this.end - this.start > this.maxSamples && this.chunks.length > 1) this.drop();
  }

  // Forget the audio before `sample` (a final's ended_at: the server is done with it).
  release(sample) {
    while (this.chunks.length && this.chunks[0].start + this.chunks[0].data.byteLength / 2 <= sample) this.drop();
    this.start = Math.max(this.start, Math.min(sample, this.end));
  }

  drop() {
    const { start, data } = this.chunks.shift();
    this.start = Math.max(this.start, start + data.byteLength / 2);
  }

  // The audio from `sample` (not before `start`) to the end, the first chunk cut to fit.
  *from(sample) {
    for (const { start, data } of this.chunks) {
      const skip = Math.max(0, sample - start) * 2;
      if (skip < data.byteLength) yield skip ? data.slice(skip) : data;
    }
  }
}

// How long to wait before each new try, and when to give up.
export class Retries {
  constructor({ tries, withinS, firstS, maxS }) {
    Object.assign(this, { tries, withinS, firstS, maxS });
    this.reset();
  }

  reset() {
    this.made = 0;
    this.since = null;
  }

  // Seconds until the next try (`hintS`: what the server asked for), or null: give up.
  next(hintS = null) {
    this.since = this.since ?? performance.now();
    const elapsedS = (performance.now() - this.since) / 1000;
    const backoff = Math.min(this.maxS, this.firstS * 2 ** this.made);
    const delay = hintS ?? backoff / 2 + (Math.random() * backoff) / 2; // jitter: half to all of it
    if (this.made >= this.tries || elapsedS + delay > this.withinS) return null;
    this.made += 1;
    return delay;
  }
}

// The last words of a transcript, cut at a word boundary.
function tail(text, chars) {
  if (text.length <= chars) return text;
  const cut = text.slice(-chars);
  const space = cut.indexOf(' ');
  return space >= 0 ? cut.slice(space + 1) : cut;
}

export class CaptionStream {
  // options: session query parameters; handlers:
  //   onOpen({resumed, lostS}): a socket opened (lostS: seconds of audio the replay no longer had)
  //   onEvent(event, latencyMs)
  //   onRetry({busy, seconds, resuming, attempt, why}): trying again in `seconds`
  //     (busy: the server said it is full; resuming: a stream that had been live)
  //   onClose({code, reason, opened, closedCleanly, gaveUp, tries, abandoned}): the stream is over
  //     (opened: a socket ever opened; gaveUp: no resume after `tries`; abandoned: stopped between
  //     tries; busy: the first socket never opened, the server still busy after the tries)
  constructor(options, { onOpen, onEvent, onRetry, onClose }, rate = 16000) {
    this.options = { ...options, sample_rate: rate };
    this.rate = rate;
    Object.assign(this, { onOpen, onEvent, onRetry, onClose });
    this.buffer = new ReplayBuffer(REPLAY_S * rate);
    this.resume = { sample: 0, nextId: 0, text: '' }; // where the transcript stands
    this.clock = new SendClock(rate);
    this.socket = null;
    this.connection = null; // what the current socket has seen: {opened, sessionClosed, fatal, shutdown, sending}
    this.everOpened = false;
    this.ending = false; // the user asked to stop: no more tries
    this.finished = false;
    this.retryTimer = null;
    this.retries = new Retries(RESUME_RETRIES);
    this.busyRetries = new Retries(BUSY_RETRIES);
  }

  // The first connection. Throws a SyntaxError when the key cannot be a subprotocol.
  open() {
    this.connect();
  }

  connect() {
    this.retryTimer = null;
    const resuming = this.everOpened;
    const from = Math.max(this.resume.sample, this.buffer.start);
    const options = { ...this.options };
    if (from > 0 || this.resume.nextId > 0) {
      // Continue the transcript: its times, its segment ids, and its last words as the
      // prompt (unless the user gave one).
      options.time_offset = from / this.rate;
      options.first_segment_id = this.resume.nextId;
      if (!options.prompt && this.resume.text) options.prompt = this.resume.text;
    }
    const { url, protocols } = streamEndpoint(options);
    const socket = new WebSocket(url, protocols);
    const connection = { opened: false, sessionClosed: false, fatal: null, shutdown: false, sending: false };
    this.buffer.held = true; // the replay must start at `from`
    socket.binaryType = 'arraybuffer';
    const openTimer = setTimeout(() => socket.close(), OPEN_TIMEOUT_MS);
    socket.onopen = () => {
      clearTimeout(openTimer);
      connection.opened = connection.sending = true;
      this.everOpened = true;
      this.retries.reset();
      this.clock = new SendClock(this.rate, from);
      for (const chunk of this.buffer.from(from)) this.transmit(chunk);
      this.buffer.held = false;
      this.onOpen({ resumed: resuming, lostS: Math.max(0, from - this.resume.sample) / this.rate });
    };
    socket.onmessage = ({ data }) => socket === this.socket && this.received(data, connection);
    socket.onclose = ({ code, reason }) => {
      clearTimeout(openTimer);
      if (socket === this.socket) this.lost(connection, code, reason);
    };
    this.socket = socket;
    this.connection = connection;
  }

  received(data, connection) {
    if (typeof data !== 'string') return;
    const arrival = performance.now();
    let event;
    try {
      event = JSON.parse(data);
    } catch {
      return;
    }
    let latency = null;
    if (event.type === 'session.closed') connection.sessionClosed = true;
    if (event.type === 'error' && event.fatal) {
      connection.sending = false; // the server is finalising: the rest goes to the next connection
      if (event.code === 'server_shutdown') connection.shutdown = true;
      else connection.fatal = event.code;
    }
    if (event.type === 'transcript.final') {
      this.finalised(event, connection.shutdown);
      const sentAt = this.clock.timeOf(event.segment.end);
      if (sentAt !== null) latency = arrival - sentAt;
    }
    this.onEvent(event, latency);
  }

  // The transcript stands after this final: a resume starts where its utterance was closed.
  // `cut`: a server shutting down finalised this utterance mid-speech. What was said
  // after its last word (a word the cut split) is not in its text, so only the audio
  // up to that word is released: the next server hears the rest.
  finalised({ segment, ended_at: endedAt, end_reason: endReason }, cut) {
    let until = endedAt ?? segment.end;
    if (cut && endReason === 'flush') {
      const words = segment.words || [];
      until = Math.min(until, words.length ? words[words.length - 1].end : segment.start);
    }
    const sample = Math.round(until * this.rate);
    const text = segment.text.trim();
    this.resume = {
      sample,
      nextId: segment.id + 1,
      text: text ? tail(`${this.resume.text} ${text}`.trim(), PROMPT_CHARS) : this.resume.text,
    };
    this.buffer.release(sample);
  }

  // A socket closed: the stream is over, or it is tried again.
  async lost(connection, code, reason) {
    this.buffer.held = false;
    const over = { code, reason, opened: this.everOpened, closedCleanly: code === 1000 && connection.sessionClosed };
    const resumable =
      !this.ending && !connection.fatal && code !== 1008 && (connection.shutdown || !over.closedCleanly);
    if (this.ending && !connection.opened) return this.finish({ ...over, abandoned: true });
    if (!resumable) return this.finish(over);
    if (!connection.opened && !this.everOpened) {
      // The first socket never opened: wait only if the server says it is busy.
      const busy = await this.busyFor();
      if (this.ending) return this.finish({ ...over, abandoned: true });
      const seconds = busy === null ? null : this.busyRetries.next(busy);
      if (seconds === null) return this.finish(busy === null ? over : { ...over, busy: true });
      return this.retryIn(seconds, { busy: true, resuming: false, why: 'the server is busy' });
    }
    const busy = connection.opened ? null : await this.busyFor();
    if (this.ending) return this.finish({ ...over, abandoned: true });
    const seconds = this.retries.next(busy);
    if (seconds === null) return this.finish({ ...over, gaveUp: true, tries: this.retries.made });
    let why = connection.shutdown ? 'the server is shutting down' : `the connection dropped (code ${code})`;
    if (!connection.opened) why = busy === null ? 'the server cannot be reached yet' : 'the server is busy';
    return this.retryIn(seconds, { busy: busy !== null, resuming: true, why });
  }

  // Seconds the server asks to wait when /readyz says it is busy (503), else null.
  async busyFor() {
    try {
      const { status, retryAfterS } = await readiness();
      return status === 503 ? Math.min(BUSY_WAIT_S, Math.max(1, retryAfterS ?? 5)) : null;
    } catch {
      return null; // not reachable: a plain failure
    }
  }

  retryIn(seconds, { busy, resuming, why }) {
    const attempt = (resuming ? this.retries : this.busyRetries).made;
    this.onRetry({ busy, seconds, resuming, attempt, why });
    this.retryTimer = setTimeout(() => {
      try {
        this.connect();
      } catch (error) {
        const over = { code: null, reason: error.message, opened: this.everOpened, closedCleanly: false };
        this.finish({ ...over, gaveUp: true, tries: attempt });
      }
    }, seconds * 1000);
  }

  finish(close) {
    if (this.finished) return;
    this.finished = true;
    clearTimeout(this.retryTimer);
    this.onClose(close);
  }

  // Audio: an ArrayBuffer of pcm_s16le samples; kept for a resume, sent when a socket is open.
  sendAudio(chunk) {
    this.buffer.push(chunk);
    if (this.connection && this.connection.sending && this.socket.readyState === WebSocket.OPEN) this.transmit(chunk);
  }

  transmit(chunk) {
    this.socket.send(chunk);
    this.clock.sent(chunk.byteLength / 2, performance.now());
  }

  // No more audio: the server finalises, sends session.closed and closes with 1000.
  end() {
    this.ending = true;
    if (this.socket && this.socket.readyState === WebSocket.OPEN) {
      this.socket.send(JSON.stringify({ type: 'end' }));
      this.connection.sending = false;
    } else {
      this.close();
    }
  }

  close() {
    this.ending = true;
    if (this.socket && this.socket.readyState <= WebSocket.OPEN) {
      this.socket.close(1000);
    } else if (this.retryTimer !== null) {
      // Between tries: what was said since the last final is not transcribed.
      this.finish({ code: null, reason: '', opened: this.everOpened, closedCleanly: false, abandoned: true });
    }
  }
}
