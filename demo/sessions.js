// The Sessions panel: the live sessions of this server (any door: the
// microphone here, a Twilio call, a Deepgram client…), and one of them
// followed live with its channels side by side (agent | caller): partials
// in place, finals with their times. GET /v0/sessions, WS /v0/sessions/{id}/events.

import { listSessions, sessionEventsEndpoint } from './api.js';
import { SpeakerColours } from './speakers.js';

function clock(seconds) {
  const m = Math.floor(seconds / 60);
  return `${m}:${(seconds - m * 60).toFixed(1).padStart(4, '0')}`;
}

export class SessionsPanel {
  constructor({ list, followed, title, messages }) {
    this.list = list;
    this.followed = followed;
    this.title = title;
    this.messages = messages;
    this.socket = null;
    this.following = null;
  }

  start(everyMs = 2000) {
    this.refresh();
    setInterval(() => this.refresh(), everyMs);
  }

  async refresh() {
    let sessions;
    try {
      sessions = await listSessions();
    } catch (error) {
      this.list.replaceChildren(Object.assign(document.createElement('li'), { textContent: error.message }));
      return;
    }
    const items = sessions.map((s) => {
      const li = document.createElement('li');
      const button = document.createElement('button');
      button.type = 'button';
      button.dataset.sessionId = s.session_id;
      button.textContent = `${s.session_id} · ${s.kind} · ${s.labels.join(' | ')} · ${clock(s.audio_s)}`;
      button.addEventListener('click', () => this.follow(s.session_id, s.labels));
      li.append(button);
      return li;
    });
    if (!items.length) items.push(Object.assign(document.createElement('li'), { textContent: 'no live session' }));
    this.list.replaceChildren(...items);
  }

  follow(sessionId, labels) {
    if (this.socket) this.socket.close();
    this.following = sessionId;
    this.title.textContent = `Following ${sessionId}`;
    const columns = new Map();
    const colours = new SpeakerColours();
    this.followed.replaceChildren(
      ...labels.map((label) => {
        const column = document.createElement('section');
        column.className = 'channel';
        column.dataset.label = label;
        const heading = document.createElement('h3');
        heading.textContent = label;
        const lines = document.createElement('ol');
        column.append(heading, lines);
        columns.set(label, lines);
        return column;
      }),
    );
    const { url, protocols } = sessionEventsEndpoint(sessionId);
    const socket = new WebSocket(url, protocols);
    this.socket = socket;
    const partials = new Map(); // segment id -> its line, until the final replaces it
    const lineFor = (event) => {
      let li = partials.get(event.segment_id);
      if (!li) {
        li = document.createElement('li');
        li.className = 'partial';
        (columns.get(event.label) || columns.values().next().value).append(li);
        partials.set(event.segment_id, li);
      }
      return li;
    };
    socket.addEventListener('message', (message) => {
      const event = JSON.parse(message.data);
      if (event.type === 'transcript.partial') {
        const li = lineFor(event);
        li.textContent = event.text;
      } else if (event.type === 'transcript.final') {
        const segment = event.segment;
        if (!segment.text.trim()) {
          partials.get(segment.id)?.remove();
          partials.delete(segment.id);
          return;
        }
        const li = lineFor({ segment_id: segment.id, label: event.label });
        partials.delete(segment.id);
        li.className = 'final';
        const time = Object.assign(document.createElement('span'), { className: 'time', textContent: clock(segment.start) });
        const text = Object.assign(document.createElement('span'), { className: 'text', textContent: segment.text.trim() });
        li.replaceChildren(time, ...(segment.speaker ? [colours.badge(segment.speaker)] : []), text);
      } else if (event.type === 'session.closed') {
        this.title.textContent = `${sessionId}: ended, ${clock(event.duration)} of audio`;
      }
    });
    socket.addEventListener('close', (close) => {
      if (close.code !== 1000 && this.following === sessionId) {
        this.messages.notify('error', 'follow', `Following ${sessionId} stopped: ${close.reason || `close ${close.code}`}.`);
      }
    });
  }
}
