// Speaker badges: a colour per speaker, in the order speakers are first seen (A, B, …, or a
// known speaker's name), the same in the live captions, a followed session and the file panel.

const HUES = [210, 25, 135, 285, 50, 335, 175, 0];

export class SpeakerColours {
  constructor() {
    this.seen = new Map(); // speaker -> its place in the order first seen
  }

  badge(name, provisional = false) {
    if (!this.seen.has(name)) this.seen.set(name, this.seen.size);
    const badge = document.createElement('span');
    badge.className = provisional ? 'speaker provisional' : 'speaker';
    badge.textContent = name;
    badge.dataset.speaker = name;
    badge.title = provisional ? `speaker ${name} (so far: the final may correct it)` : `speaker ${name}`;
    badge.style.setProperty('--hue', HUES[this.seen.get(name) % HUES.length]);
    return badge;
  }
}
