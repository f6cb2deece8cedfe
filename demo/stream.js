// One live stream over /v0/audio/stream: sends audio, receives events, measures latency.

import { streamEndpoint } from './api.js';

// When each sample was sent, so a final's audio `end` maps back to a wall-clock time.
// Audio time is samples sent / rate, as the server counts it.
export class SendClock {
  constructor(rate) {
    this.rate = rate;
    this.samples = 0;
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

export class CaptionStream {
  // options: session query parameters; handlers: onOpen(), onEvent(event, latencyMs),
  // onClose({code, reason, opened, closedCleanly})
  constructor(options, { onOpen, onEvent, onClose }, rate = 16000) {
    this.options = { ...options, sample_rate: rate };
    this.clock = new SendClock(rate);
    this.onOpen = onOpen;
    this.onEvent = onEvent;
    this.onClose = onClose;
    this.socket = null;
    this.opened = false;
    this.sessionClosed = false;
    this.queue = []; // audio captured while the socket opens, up to 10 s
    this.queued = 0;
    this.maxQueued = 10 * rate * 2;
  }

  // Throws a SyntaxError when the key cannot be a subprotocol (spaces, commas, ...).
  open() {
    const { url, protocols } = streamEndpoint(this.options);
    const socket = new WebSocket(url, protocols);
    socket.binaryType = 'arraybuffer';
    socket.onopen = () => {
      this.opened = true;
      for (const chunk of this.queue) this.transmit(chunk);
      this.queue = [];
      this.onOpen();
    };
    socket.onmessage = ({ data }) => this.received(data);
    socket.onclose = ({ code, reason }) =>
      this.onClose({ code, reason, opened: this.opened, closedCleanly: this.sessionClosed });
    this.socket = socket;
  }

  received(data) {
    if (typeof data !== 'string') return;
    const arrival = performance.now();
    let event;
    try {
      event = JSON.parse(data);
    } catch {
      return;
    }
    if (event.type === 'session.closed') this.sessionClosed = true;
    let latency = null;
    if (event.type === 'transcript.final') {
      const sentAt = this.clock.timeOf(event.segment.end);
      if (sentAt !== null) latency = arrival - sentAt;
    }
    this.onEvent(event, latency);
  }

  // Audio: an ArrayBuffer of pcm_s16le samples.
  sendAudio(chunk) {
    if (this.opened) {
      if (this.socket.readyState === WebSocket.OPEN) this.transmit(chunk);
    } else if (this.queued + chunk.byteLength <= this.maxQueued) {
      this.queue.push(chunk);
      this.queued += chunk.byteLength;
    }
  }

  transmit(chunk) {
    this.socket.send(chunk);
    this.clock.sent(chunk.byteLength / 2, performance.now());
  }

  // No more audio: the server finalises, sends session.closed and closes with 1000.
  end() {
    if (this.socket && this.socket.readyState === WebSocket.OPEN) {
      this.socket.send(JSON.stringify({ type: 'end' }));
    } else {
      this.close();
    }
  }

  close() {
    if (this.socket && this.socket.readyState <= WebSocket.OPEN) this.socket.close(1000);
  }
}
