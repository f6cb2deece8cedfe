// The demo page's entry point, and the live captions controller.
//
// Modules: api.js (endpoints), settings.js (model, language, key), messages.js,
// mic.js + pcm-worklet.js (capture), stream.js (the socket, its resumes and the latency clock),
// captions.js (rendering), upload.js + subtitles.js (the file panel).

import { apiKey, listModels } from './api.js';
import { Transcript, clock } from './captions.js';
import { Messages } from './messages.js';
import { Microphone, TARGET_RATE } from './mic.js';
import { Settings } from './settings.js';
import { CaptionStream } from './stream.js';
import { SessionsPanel } from './sessions.js';
import { setUpUpload } from './upload.js';

const $ = (id) => document.getElementById(id);
const ui = {
  start: $('start'),
  stop: $('stop'),
  clear: $('clear'),
  state: $('state'),
  level: $('level'),
  latency: $('latency'),
  session: $('session-info'),
};
const messages = new Messages($('messages'), () => start());
const settings = new Settings(messages);
const transcript = new Transcript($('transcript'));
const latencies = [];
let live = null; // the running stream: {mic, stream, stopping, timer, countdown}

// -- what the controls show ---------------------------------------------------
const LABELS = {
  idle: 'idle',
  starting: 'starting microphone…',
  connecting: 'connecting…',
  waiting: 'server busy, waiting…',
  live: 'live',
  reconnecting: 'reconnecting…',
  finishing: 'finishing…',
};

function setState(state) {
  ui.state.dataset.state = state;
  ui.state.textContent = LABELS[state];
  ui.start.disabled = state !== 'idle';
  ui.stop.disabled = state === 'idle' || state === 'finishing';
  settings.lock(state !== 'idle');
  if (state === 'idle') ui.level.value = 0;
}

function showLevel(rms) {
  const db = 20 * Math.log10(Math.max(rms, 1e-6));
  const level = Math.min(1, Math.max(0, (db + 60) / 60)); // -60 dBFS .. 0 dBFS
  ui.level.value = Math.max(level, ui.level.value * 0.8); // falls back gently
}

function seconds(ms) {
  return `${(ms / 1000).toFixed(2)} s`;
}

// latencyMs: how long after the speech ended (by the audio clock) its final arrived.
function recordLatency(latencyMs) {
  if (latencyMs === null) return;
  latencies.push(latencyMs);
  const sorted = [...latencies].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)];
  ui.latency.dataset.lastMs = Math.round(latencyMs);
  ui.latency.dataset.medianMs = Math.round(median);
  ui.latency.textContent = `${seconds(latencyMs)} last · ${seconds(median)} median of ${latencies.length}`;
}

function clearTranscript() {
  transcript.clear();
  latencies.length = 0;
  ui.latency.textContent = '–';
  delete ui.latency.dataset.lastMs;
  delete ui.latency.dataset.medianMs;
}

// -- a stream's life: start -> connect -> received... -> stop -> closed --------
function start() {
  if (live) return;
  messages.forget('refused', 'dropped', 'closed', 'microphone', 'options', 'reconnected', 'gap');
  const session = { stopping: false, timer: null, countdown: null };
  live = session;
  setState('starting');
  transcript.newSession();
  session.stream = new CaptionStream(
    settings.chosen(),
    {
      onOpen: (opening) => live === session && connected(session, opening),
      onEvent: (event, latency) => live === session && received(event, latency),
      onRetry: (retry) => live === session && retrying(session, retry),
      onClose: (close) => closed(session, close),
    },
    TARGET_RATE,
  );
  session.mic = new Microphone({
    // Kept by the stream until the server has finalised it; sent while a socket is open.
    onChunk: (chunk) => session.stream.sendAudio(chunk),
    onLevel: showLevel,
    onEnded: () => {
      messages.notify('error', 'microphone', 'The microphone stopped (disconnected?); what was said is being finalised.');
      stop();
    },
  });
  // Nothing before this call may await: the AudioContext must start inside the click.
  session.mic.start().then(
    () => connect(session),
    (error) => {
      live = null;
      setState('idle');
      messages.notify('error', 'microphone', `Microphone: ${error.message}`, { retry: true });
    },
  );
}

function connect(session) {
  if (live !== session) return;
  setState('connecting');
  try {
    session.stream.open();
  } catch (error) {
    live = null;
    session.mic.stop();
    setState('idle');
    messages.notify('error', 'bad-key', `This API key cannot be sent by a browser (${error.message}).`);
  }
}

// A socket opened: the first one, or one that resumes the stream after a drop.
function connected(session, { resumed, lostS }) {
  clearInterval(session.countdown);
  messages.forget('busy', 'reconnecting');
  if (lostS > 0) {
    messages.notify('info', 'gap', `${lostS.toFixed(1)} s of audio before this was more than the page keeps; captions for it may be missing.`);
  }
  if (resumed) messages.notify('info', 'reconnected', 'Reconnected: the captions continue where they stopped.');
  if (!session.stopping) setState('live');
}

// The stream tries again in `seconds`: the server was busy, or the connection dropped.
function retrying(session, { busy, seconds, resuming, attempt, why }) {
  clearInterval(session.countdown);
  if (session.stopping) return;
  setState(resuming ? 'reconnecting' : 'waiting');
  messages.forget('reconnected');
  if (resuming) {
    transcript.dropPartials(); // their audio is sent again
    const text = `Reconnecting (try ${attempt}): ${why}; what you say meanwhile is kept and sent.`;
    if (!messages.update('reconnecting', text)) messages.notify('info', 'reconnecting', text);
  }
  if (busy) {
    const until = performance.now() + seconds * 1000;
    const text = () => `The server is busy; retrying in ${Math.max(0, Math.ceil((until - performance.now()) / 1000))} s.`;
    messages.notify('info', 'busy', text());
    session.countdown = setInterval(() => messages.update('busy', text()), 250);
  } else {
    messages.forget('busy');
  }
}

function received(event, latency) {
  switch (event.type) {
    case 'session.created': {
      const offset = event.session.time_offset;
      const resumed = offset > 0 ? ` · resumed at ${clock(offset)}` : '';
      ui.session.textContent = `session ${event.session_id} · model ${event.session.model} · gateway ${event.version}${resumed}`;
      break;
    }
    case 'transcript.partial':
      transcript.partial(event);
      break;
    case 'transcript.final':
      transcript.final(event, latency);
      recordLatency(latency);
      break;
    case 'error': {
      if (event.code === 'server_shutdown' && !live.stopping) break; // resumed: see retrying()
      const closing = event.fatal ? ' The stream is closing.' : '';
      messages.notify('error', event.code, `Server error (${event.code}): ${event.message}${closing}`);
      break;
    }
    case 'session.closed':
      ui.session.textContent += ` · ${event.duration.toFixed(1)} s of audio, ${event.segments} segment(s)`;
      break;
    default: // speech.started and event types newer than this page: nothing to show
  }
}

async function stop() {
  const session = live;
  if (!session || session.stopping) return;
  session.stopping = true;
  setState('finishing');
  await session.mic.stop(); // hands over the last partial chunk
  session.stream.end(); // the server finalises, sends session.closed, closes with 1000
  session.timer = setTimeout(() => session.stream.close(), 30000);
}

async function closed(session, { code, reason, opened, closedCleanly, gaveUp, tries, abandoned, busy }) {
  clearTimeout(session.timer);
  clearInterval(session.countdown);
  if (live === session) live = null;
  messages.forget('busy', 'reconnecting');
  transcript.dropPartials();
  await session.mic.stop();
  setState('idle');
  const why = reason ? `: ${reason}` : '';
  if (abandoned) {
    if (opened) messages.notify('info', 'closed', 'Stopped while reconnecting: what was said since the last caption was not transcribed.');
  } else if (gaveUp) {
    messages.notify('error', 'dropped', `The connection dropped and could not be restored (${tries} tries${why}).`, { retry: true });
  } else if (busy) {
    messages.notify('error', 'refused', 'Connection refused: the server is still at capacity; retry later.', { retry: true });
  } else if (!opened) {
    if (!session.stopping) messages.notify('error', 'refused', await explainRefusal(), { retry: true });
  } else if (code === 1000 && closedCleanly) {
    if (!session.stopping) messages.notify('info', 'closed', 'The server ended the stream.');
  } else if (code === 1001) {
    messages.notify('error', 'dropped', 'The server is shutting down; what was said has been finalised.', { retry: true });
  } else if (code === 1008) {
    messages.notify('error', 'options', `The server refused the session options${why}.`);
  } else {
    messages.notify('error', 'dropped', `The connection dropped (code ${code}${why}).`, { retry: true });
  }
}

// A browser sees a refused upgrade (401, 403 or 503) only as a failed connection; the
// stream has asked /readyz whether the server is busy, and the HTTP API, which checks
// the same key, tells whether the key is the reason.
async function explainRefusal() {
  try {
    await listModels();
    return 'Connection refused, though the API key is fine and the server has room: it may not allow pages from this origin, or be at its connection limit; retry shortly.';
  } catch (error) {
    if (error.status === 401) {
      settings.askForKey();
      return apiKey.get()
        ? 'Connection refused: the server did not accept the API key; check it.'
        : 'Connection refused: this server needs an API key; enter it above.';
    }
    if (error.status === 0) return `Connection refused: ${error.message}.`;
    return 'Connection refused: check the API key or the server is at capacity.';
  }
}

ui.start.addEventListener('click', start);
ui.stop.addEventListener('click', stop);
ui.clear.addEventListener('click', clearTranscript);
setState('idle');
setUpUpload(() => settings.chosen());
settings.load();
new SessionsPanel({
  list: $('session-list'),
  followed: $('followed'),
  title: $('followed-title'),
  messages,
}).start();
