// The file panel: one POST to the batch API, the result offered as text, SRT and VTT.

import { transcribeFile } from './api.js';
import { SpeakerColours } from './speakers.js';
import { toSrt, toText, toVtt } from './subtitles.js';

const FORMATS = [
  ['txt', 'text/plain', toText],
  ['srt', 'application/x-subrip', (result) => toSrt(result.segments)],
  ['vtt', 'text/vtt', (result) => toVtt(result.segments)],
];

function baseName(fileName) {
  return fileName.replace(/\.[^.]*$/, '') || 'transcript';
}

// settings() -> {model, language}; the elements are found by their #upload-* ids.
export function setUpUpload(settings) {
  const form = document.getElementById('upload-form');
  const input = document.getElementById('upload-file');
  const submit = document.getElementById('upload-submit');
  const status = document.getElementById('upload-status');
  const result = document.getElementById('upload-result');
  const objectUrls = [];

  function show(message, kind) {
    status.textContent = message;
    status.dataset.kind = kind;
  }

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const file = input.files[0];
    if (!file) return show('Choose an audio or video file first.', 'error');
    submit.disabled = true;
    result.hidden = true;
    const started = performance.now();
    show(`Transcribing ${file.name}…`, 'busy');
    try {
      const transcription = await transcribeFile(file, settings());
      offer(transcription, baseName(file.name));
      const seconds = ((performance.now() - started) / 1000).toFixed(1);
      show(`${transcription.duration.toFixed(1)} s of audio (${transcription.language}) transcribed in ${seconds} s.`, 'done');
    } catch (error) {
      show(`Transcription failed: ${error.message}`, 'error');
    } finally {
      submit.disabled = false;
    }
  });

  function offer(transcription, name) {
    objectUrls.splice(0).forEach((url) => URL.revokeObjectURL(url));
    for (const [extension, type, render] of FORMATS) {
      const content = render(transcription);
      const url = URL.createObjectURL(new Blob([content], { type }));
      objectUrls.push(url);
      const link = document.getElementById(`upload-${extension}`);
      link.href = url;
      link.download = `${name}.${extension}`;
      if (extension === 'srt') document.getElementById('upload-preview').textContent = content;
    }
    const text = document.getElementById('upload-text');
    if (transcription.segments.some((s) => s.speaker)) {
      // Diarized: a line per segment, after its speaker's badge.
      const colours = new SpeakerColours();
      text.replaceChildren(...transcription.segments.filter((s) => s.text.trim()).map((s) => {
        const line = document.createElement('span');
        line.className = 'said';
        line.append(colours.badge(s.speaker), s.text.trim());
        return line;
      }));
    } else {
      text.textContent = transcription.text;
    }
    result.hidden = false;
  }
}
