// The message list under the live controls: one message per code, newest last.

const KEEP = 5;

export class Messages {
  // onRetry() runs when a message's Retry button is pressed.
  constructor(list, onRetry) {
    this.list = list;
    this.onRetry = onRetry;
  }

  // kind: "error" or "info"; a newer message with the same code replaces the older one.
  notify(kind, code, text, { retry = false } = {}) {
    this.forget(code);
    const item = document.createElement('li');
    item.dataset.kind = kind;
    item.dataset.code = code;
    const words = document.createElement('span');
    words.className = 'words';
    words.textContent = text;
    item.append(words);
    if (retry) {
      const button = document.createElement('button');
      button.type = 'button';
      button.className = 'retry';
      button.textContent = 'Retry';
      button.addEventListener('click', () => this.onRetry());
      item.append(' ', button);
    }
    this.list.append(item);
    while (this.list.children.length > KEEP) this.list.firstElementChild.remove();
  }

  // A new text for the message with this code, in place (a countdown); false if none is shown.
  update(code, text) {
    const words = this.list.querySelector(`li[data-code="${CSS.escape(code)}"] .words`);
    if (words && words.textContent !== text) words.textContent = text; // a live region: no needless announcements
    return !!words;
  }

  forget(...codes) {
    for (const item of [...this.list.children]) {
      if (codes.includes(item.dataset.code)) item.remove();
    }
  }
}
