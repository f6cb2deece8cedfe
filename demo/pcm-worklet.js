// AudioWorklet processor: microphone audio in, 16 kHz mono pcm_s16le chunks out.
//
// It runs at the AudioContext's rate (usually 44.1 or 48 kHz). Each render quantum is
// downmixed to mono, resampled by a windowed-sinc low-pass interpolator, converted to
// Int16 and collected into chunks of `chunkMs`; each full chunk is posted to the page
// (its buffer transferred, not copied) with its RMS level for the meter.
//
// Messages from the page: "flush" posts what is collected so far, marked `last: true`.

const TABLE_STEPS = 64; // kernel values per input sample in the lookup table

// Blackman window over u in [-1, 1].
function blackman(u) {
  return 0.42 + 0.5 * Math.cos(Math.PI * u) + 0.08 * Math.cos(2 * Math.PI * u);
}

// Band-limited resampling: output sample k is the input, low-passed below 0.9 x the
// lower Nyquist frequency, evaluated at input position k * inRate / outRate.
class SincResampler {
  constructor(inRate, outRate, zeroCrossings = 16) {
    this.step = inRate / outRate; // input samples per output sample
    const cutoff = 0.45 * Math.min(1, outRate / inRate); // cycles per input sample
    this.halfWidth = zeroCrossings / (2 * cutoff); // kernel reach, in input samples
    // The kernel is symmetric: tabulate it on [0, halfWidth].
    this.table = new Float32Array(Math.ceil(this.halfWidth * TABLE_STEPS) + 2);
    for (let i = 0; i < this.table.length; i++) {
      const t = i / TABLE_STEPS;
      if (t >= this.halfWidth) break;
      const x = 2 * cutoff * t;
      const sinc = x === 0 ? 1 : Math.sin(Math.PI * x) / (Math.PI * x);
      this.table[i] = 2 * cutoff * sinc * blackman(t / this.halfWidth);
    }
    // Input not yet fully used, and where the next output sample sits in it. The
    // stream starts in silence, so the history starts as zeros.
    this.history = new Float32Array(Math.ceil(this.halfWidth));
    this.position = this.history.length;
  }

  // Feed input samples; returns the output samples they complete.
  process(input) {
    const buffer = new Float32Array(this.history.length + input.length);
    buffer.set(this.history);
    buffer.set(input, this.history.length);
    const output = [];
    while (this.position + this.halfWidth < buffer.length) {
      output.push(this.valueAt(buffer, this.position));
      this.position += this.step;
    }
    const used = Math.max(0, Math.floor(this.position - this.halfWidth));
    this.history = buffer.slice(used);
    this.position -= used;
    return output;
  }

  valueAt(buffer, position) {
    const first = Math.ceil(position - this.halfWidth);
    const last = Math.floor(position + this.halfWidth);
    let sum = 0;
    for (let i = first; i <= last; i++) {
      const at = Math.abs(position - i) * TABLE_STEPS;
      const k = Math.floor(at);
      const weight = this.table[k] + (this.table[k + 1] - this.table[k]) * (at - k);
      sum += buffer[i] * weight;
    }
    return sum;
  }
}

function downmix(channels) {
  if (channels.length === 1) return channels[0];
  const mono = new Float32Array(channels[0].length);
  for (const channel of channels) {
    for (let i = 0; i < mono.length; i++) mono[i] += channel[i] / channels.length;
  }
  return mono;
}

class PcmCaptureProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const { targetRate = 16000, chunkMs = 40 } = options.processorOptions || {};
    this.resampler = new SincResampler(sampleRate, targetRate);
    this.chunk = new Int16Array(Math.round((targetRate * chunkMs) / 1000));
    this.filled = 0;
    this.sumSquares = 0;
    this.port.onmessage = ({ data }) => {
      if (data === 'flush') this.post(true);
    };
  }

  process(inputs) {
    const channels = inputs[0];
    if (channels && channels.length > 0) {
      for (const sample of this.resampler.process(downmix(channels))) this.push(sample);
    }
    return true;
  }

  push(sample) {
    const clipped = Math.max(-1, Math.min(1, sample));
    this.sumSquares += clipped * clipped;
    this.chunk[this.filled++] = Math.round(clipped * 32767);
    if (this.filled === this.chunk.length) this.post(false);
  }

  post(last) {
    const pcm = this.chunk.slice(0, this.filled);
    const level = this.filled ? Math.sqrt(this.sumSquares / this.filled) : 0;
    this.port.postMessage({ pcm: pcm.buffer, level, last }, [pcm.buffer]);
    this.filled = 0;
    this.sumSquares = 0;
  }
}

registerProcessor('pcm-capture', PcmCaptureProcessor);
