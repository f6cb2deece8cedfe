// Live captions: each segment's partial is shown where its final will go and is replaced
// by it; finals accumulate, with times, and each word tells its time and probability.
// With speaker labels, each line starts with its speaker's badge (a partial's is provisional).
//
// The list carries counters for tests and tools: data-partials (partials shown) and
// data-finals; each final item has data-partials-seen (partials shown before it).

import { SpeakerColours } from './speakers.js';

const UNSURE = 0.5; // words below this probability are marked

export function clock(seconds) {
  const minutes = Math.floor(seconds / 60);
  const rest = (seconds - minutes * 60).toFixed(1).padStart(4, '0');
  return `${minutes}:${rest}`;
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function timeOf(start, end) {
  return element('span', 'time', end === null ? `${clock(start)} –` : `${clock(start)} – ${clock(end)}`);
}

function wordsOf(segment) {
  const text = element('span', 'text');
  const words = segment.words || [];
  if (words.length === 0) {
    text.textContent = segment.text.trim();
    return text;
  }
  words.forEach((w, i) => {
    const space = w.word.match(/^\s*/)[0];
    if (i > 0 && space) text.append(space);
    const word = element('span', 'word', w.word.trim());
    word.title = `${clock(w.start)} – ${clock(w.end)} · probability ${w.probability.toFixed(2)}`
      + (w.speaker && w.speaker !== segment.speaker ? ` · speaker ${w.speaker}` : '');
    if (w.probability < UNSURE) word.classList.add('unsure');
    text.append(word);
  });
  return text;
}

export class Transcript {
  constructor(list) {
    this.list = list;
    this.session = 0;
    this.partials = new Map(); // segment id -> {item, count}
    this.colours = new SpeakerColours();
    list.dataset.partials = 0;
    list.dataset.finals = 0;
  }

  // Segment ids and audio times restart with every stream.
  newSession() {
    this.session += 1;
    this.partials.clear();
  }

  clear() {
    this.list.replaceChildren();
    this.partials.clear();
  }

  // The partials shown so far will get no final (their connection dropped): a resumed
  // stream transcribes that audio again, under the same segment ids.
  dropPartials() {
    for (const { item } of this.partials.values()) item.remove();
    this.partials.clear();
  }

  partial(event) {
    const following = this.atBottom();
    let entry = this.partials.get(event.segment_id);
    if (!entry) {
      // Hidden from screen readers: the final that replaces it is announced instead.
      const item = this.item('partial', event.segment_id);
      item.setAttribute('aria-hidden', 'true');
      this.place(item, event.segment_id);
      entry = { item, count: 0 };
      this.partials.set(event.segment_id, entry);
    }
    entry.count += 1;
    const stable = event.text.startsWith(event.stable_text) ? event.stable_text : '';
    const text = element('span', 'text');
    text.append(element('span', 'stable', stable), element('span', 'tentative', event.text.slice(stable.length)));
    entry.item.replaceChildren(timeOf(event.start, null), ...this.speaker(event.speaker, true), text);
    this.bump('partials');
    if (following) this.scrollToEnd();
  }

  final(event, latencyMs) {
    const following = this.atBottom();
    const segment = event.segment;
    const entry = this.partials.get(segment.id);
    this.partials.delete(segment.id);
    if (!segment.text.trim()) {
      if (entry) entry.item.remove();
      return;
    }
    const item = this.item('final', segment.id);
    item.dataset.start = segment.start;
    item.dataset.end = segment.end;
    item.dataset.partialsSeen = entry ? entry.count : 0;
    item.append(timeOf(segment.start, segment.end), ...this.speaker(segment.speaker), wordsOf(segment));
    if (segment.speaker) item.dataset.speaker = segment.speaker;
    if (latencyMs !== null) {
      item.dataset.latencyMs = Math.round(latencyMs);
      const badge = element('span', 'latency', `${(latencyMs / 1000).toFixed(2)} s`);
      badge.title = 'how long after this speech ended its final caption arrived';
      item.append(badge);
    }
    if (entry) entry.item.replaceWith(item);
    else this.place(item, segment.id);
    this.bump('finals');
    if (following) this.scrollToEnd();
  }

  speaker(name, provisional = false) {
    return name ? [this.colours.badge(name, provisional)] : [];
  }

  item(kind, segmentId) {
    const item = element('li', kind);
    item.dataset.session = this.session;
    item.dataset.segmentId = segmentId;
    return item;
  }

  // In segment order: before any later segment of this stream already shown.
  place(item, segmentId) {
    const later = [...this.list.children].find(
      (li) => li.dataset.session === String(this.session) && Number(li.dataset.segmentId) > segmentId,
    );
    this.list.insertBefore(item, later || null);
  }

  bump(counter) {
    this.list.dataset[counter] = Number(this.list.dataset[counter]) + 1;
  }

  // The newest caption stays in view unless the user has scrolled up to read.
  atBottom() {
    const box = this.list;
    return box.scrollHeight - box.scrollTop - box.clientHeight < 40;
  }

  scrollToEnd() {
    this.list.scrollTop = this.list.scrollHeight;
  }
}
