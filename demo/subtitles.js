// verbose_json segments as plain text, SRT and WebVTT: one transcription, three downloads.
// The cue rules are the server's (gateway/formats.py): a cue is one line (whitespace runs
// collapse), blank segments are skipped, "-->" in text is defused, a cue lasts at least 1 ms,
// VTT text escapes & < >, and a diarized cue names its speaker ("A: text", "<v A>text").
// The browser test checks the page's SRT against the server's.

function timestamp(seconds, decimal) {
  let millis = Math.max(0, Math.round(seconds * 1000));
  const hours = Math.floor(millis / 3600000);
  millis -= hours * 3600000;
  const minutes = Math.floor(millis / 60000);
  millis -= minutes * 60000;
  const secs = Math.floor(millis / 1000);
  millis -= secs * 1000;
  const two = (n) => String(n).padStart(2, '0');
  return `${two(hours)}:${two(minutes)}:${two(secs)}${decimal}${String(millis).padStart(3, '0')}`;
}

function oneLine(text) {
  return text.split(/\s+/).filter(Boolean).join(' ').replaceAll('-->', '->');
}

function cues(segments) {
  return segments
    .map((s) => ({
      start: s.start, end: Math.max(s.end, s.start + 0.001), text: oneLine(s.text), speaker: s.speaker ? oneLine(s.speaker) : '',
    }))
    .filter((cue) => cue.text);
}

export function toSrt(segments) {
  return cues(segments)
    .map((c, i) => `${i + 1}\n${timestamp(c.start, ',')} --> ${timestamp(c.end, ',')}\n${c.speaker ? `${c.speaker}: ` : ''}${c.text}\n`)
    .join('\n');
}

function vttEscape(text) {
  return text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
}

export function toVtt(segments) {
  const blocks = cues(segments).map(
    (c) => `${timestamp(c.start, '.')} --> ${timestamp(c.end, '.')}\n${c.speaker ? `<v ${vttEscape(c.speaker)}>` : ''}${vttEscape(c.text)}\n`,
  );
  return `WEBVTT\n\n${blocks.join('\n')}`;
}

export function toText(result) {
  return `${result.text}\n`;
}
