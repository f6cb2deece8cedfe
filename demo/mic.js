// The microphone: getUserMedia -> AudioWorklet (pcm-worklet.js) -> 16 kHz pcm_s16le chunks.

export const TARGET_RATE = 16000;
const CHUNK_MS = 40;
const RESUME_TIMEOUT_MS = 3000;

// Echo cancellation keeps loudspeaker output out of the captions; noise suppression is
// off because it smears speech that Whisper would rather hear as it is.
const CONSTRAINTS = {
  audio: { channelCount: 1, echoCancellation: true, noiseSuppression: false, autoGainControl: true },
};

export class MicrophoneError extends Error {}

// Why the browser gave no microphone, in words a user can act on.
function explain(error) {
  switch (error && error.name) {
    case 'NotAllowedError':
    case 'SecurityError':
      return 'microphone permission denied: allow the microphone for this page and try again';
    case 'NotFoundError':
    case 'OverconstrainedError':
      return 'no microphone found: connect one and try again';
    case 'NotReadableError':
    case 'AbortError':
      return 'the microphone could not be opened (is another application using it?)';
    default:
      return `the microphone could not be started: ${error && error.message ? error.message : error}`;
  }
}

// An AudioContext runs only with an audio output device; without one (Firefox on a machine
// with no sound server) resume() never settles, and the user should hear why.
function resumed(context) {
  return Promise.race([
    context.resume(),
    new Promise((_, reject) =>
      setTimeout(() => {
        if (context.state !== 'running') {
          reject(new MicrophoneError('the browser did not start audio processing (is an audio output device available?)'));
        }
      }, RESUME_TIMEOUT_MS),
    ),
  ]);
}

export class Microphone {
  // onChunk(ArrayBuffer of Int16 samples), onLevel(rms 0..1), onEnded() when the device goes away.
  constructor({ onChunk, onLevel, onEnded }) {
    this.onChunk = onChunk;
    this.onLevel = onLevel;
    this.onEnded = onEnded;
    this.context = null;
    this.stream = null;
    this.node = null;
    this.flushed = null;
    this.stopped = null;
  }

  // Call from a click handler: the AudioContext is created before the first await, so
  // the browser counts it as started by the user.
  async start() {
    if (!window.isSecureContext || !navigator.mediaDevices) {
      throw new MicrophoneError('browsers only allow the microphone on https:// or http://localhost pages');
    }
    const context = new AudioContext({ latencyHint: 'interactive' });
    this.context = context;
    try {
      const worklet = context.audioWorklet.addModule(new URL('./pcm-worklet.js', import.meta.url).href);
      worklet.catch(() => {}); // awaited below, once the microphone is ours
      this.stream = await navigator.mediaDevices.getUserMedia(CONSTRAINTS).catch((error) => {
        throw new MicrophoneError(explain(error));
      });
      await worklet;
      this.node = new AudioWorkletNode(context, 'pcm-capture', {
        numberOfOutputs: 0,
        processorOptions: { targetRate: TARGET_RATE, chunkMs: CHUNK_MS },
      });
      this.node.port.onmessage = ({ data }) => this.received(data);
      context.createMediaStreamSource(this.stream).connect(this.node);
      for (const track of this.stream.getAudioTracks()) {
        track.addEventListener('ended', () => this.onEnded());
      }
      await resumed(context);
    } catch (error) {
      await this.stop();
      throw error instanceof MicrophoneError ? error : new MicrophoneError(explain(error));
    }
  }

  received({ pcm, level, last }) {
    if (pcm.byteLength > 0) this.onChunk(pcm);
    this.onLevel(level);
    if (last && this.flushed) this.flushed();
  }

  // Stop capturing; resolves once the last partial chunk has been handed to onChunk.
  // Safe to call more than once: every call waits for the same release.
  stop() {
    this.stopped = this.stopped || this.release();
    return this.stopped;
  }

  async release() {
    if (this.node) {
      const done = new Promise((resolve) => {
        this.flushed = resolve;
        setTimeout(resolve, 300); // a closed or stalled context never answers
      });
      this.node.port.postMessage('flush');
      await done;
      this.node.disconnect();
      this.node.port.onmessage = null;
      this.node = null;
    }
    if (this.stream) {
      for (const track of this.stream.getTracks()) track.stop();
      this.stream = null;
    }
    if (this.context) {
      await this.context.close().catch(() => {});
      this.context = null;
    }
  }
}
