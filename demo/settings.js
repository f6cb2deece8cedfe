// Model, language, speaker labels and API key: the model list comes from GET /v0/models,
// the languages from the chosen model, and the key field shows itself when the server asks for one.

import { apiKey, listModels } from './api.js';

const languageNames = new Intl.DisplayNames(['en'], { type: 'language' });

function languageName(code) {
  try {
    return `${languageNames.of(code)} (${code})`;
  } catch {
    return code;
  }
}

function option(value, label) {
  const node = document.createElement('option');
  node.value = value;
  node.textContent = label;
  return node;
}

function modelLabel(m) {
  if (m.alias_of) return `${m.id} (server default: ${m.alias_of})`;
  const kind = m.multilingual === true ? 'multilingual' : m.multilingual === false ? 'English only' : '';
  return kind ? `${m.id} · ${kind}` : m.id;
}

// What "Redact numbers" asks the server to replace (docs/protocol.md section 10).
const REDACT_KINDS = 'pci,ssn,phone,email';

export class Settings {
  constructor(messages) {
    this.messages = messages;
    this.model = document.getElementById('model');
    this.language = document.getElementById('language');
    this.diarize = document.getElementById('diarize');
    this.redact = document.getElementById('redact');
    this.keyForm = document.getElementById('api-key-form');
    this.keyInput = document.getElementById('api-key');
    this.models = [];
    this.model.addEventListener('change', () => this.showLanguages());
    this.keyForm.addEventListener('submit', (event) => {
      event.preventDefault();
      apiKey.set(this.keyInput.value.trim());
      this.load();
    });
    this.keyInput.value = apiKey.get();
    this.keyForm.hidden = !apiKey.get();
  }

  // {model, language, diarize?, redact?} for a stream or an upload; language '' means auto-detect.
  chosen() {
    const chosen = { model: this.model.value, language: this.language.value };
    if (this.diarize.checked) chosen.diarize = true;
    if (this.redact.checked) chosen.redact = REDACT_KINDS;
    return chosen;
  }

  // Model, language, speaker labels and redaction stay fixed while a stream runs.
  lock(locked) {
    this.model.disabled = this.language.disabled = this.diarize.disabled = this.redact.disabled = locked;
  }

  askForKey() {
    this.keyForm.hidden = false;
  }

  async load() {
    try {
      this.showModels(await listModels());
      this.messages.forget('key-required', 'bad-key', 'models');
    } catch (error) {
      // Without the list, streams and uploads still work with the server's default model.
      if (!this.models.length) this.showModels([{ id: 'whisper-1', languages: null }]);
      if (error.status === 401) {
        this.askForKey();
        this.messages.forget('key-required', 'bad-key');
        const [kind, code, text] = apiKey.get()
          ? ['error', 'bad-key', 'The server refused this API key: check it and press “Use key”.']
          : ['info', 'key-required', 'This server needs an API key: enter it above.'];
        this.messages.notify(kind, code, text);
      } else {
        this.messages.notify('error', 'models', `Could not load the model list: ${error.message}`);
      }
    }
  }

  showModels(list) {
    const previous = this.model.value;
    this.models = list;
    this.model.replaceChildren(...list.map((m) => option(m.id, modelLabel(m))));
    const fallback = list.find((m) => m.default) || list[0];
    this.model.value = list.some((m) => m.id === previous) ? previous : fallback.id;
    this.showLanguages();
  }

  // The chosen model's languages; null means not known until it is loaded: auto-detect only.
  showLanguages() {
    const previous = this.language.value;
    const model = this.models.find((m) => m.id === this.model.value);
    const codes = (model && model.languages) || [];
    const options = codes
      .map((code) => option(code, languageName(code)))
      .sort((a, b) => a.textContent.localeCompare(b.textContent));
    if (codes.length !== 1) options.unshift(option('', 'auto-detect'));
    this.language.replaceChildren(...options);
    if ([...this.language.options].some((o) => o.value === previous)) this.language.value = previous;
  }
}
