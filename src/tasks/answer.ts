/** Answer extraction and the comparisons the scorers share. */

/**
 * The text inside the last <answer>...</answer> of a model output (tag case ignored). An opening
 * tag without a closing one, as when generation stops at the closing tag, runs to the end of the
 * output. null when the output has no answer tag.
 */
export function extractAnswer(output: string): string | null {
  const lower = output.toLowerCase();
  const open = lower.lastIndexOf('<answer>');
  if (open < 0) return null;
  const start = open + '<answer>'.length;
  const close = lower.indexOf('</answer>', start);
  return output.slice(start, close < 0 ? output.length : close).trim();
}

/** A complete model output around an answer body: the answer tags the prompts ask for. */
export function answerCompletion(body: string): string {
  return `<answer>\n${body}\n</answer>`;
}

/** Lines "1. x", "2. y", ... */
export function numberedLines(items: readonly string[]): string {
  return items.map((x, i) => `${i + 1}. ${x}`).join('\n');
}

/** Intersection over union; 1 when both sets are empty. */
export function iou<T>(predicted: ReadonlySet<T>, gold: ReadonlySet<T>): number {
  let inter = 0;
  for (const x of predicted) if (gold.has(x)) inter++;
  const union = predicted.size + gold.size - inter;
  return union === 0 ? 1 : inter / union;
}

/** Lower case, single spaces, no leading article, no trailing punctuation or quotes. */
export function normalizePhrase(text: string): string {
  return text
    .toLowerCase()
    .replace(/\s+/g, ' ')
    .trim()
    .replace(/^["'`*]+|["'`*]+$/g, '')
    .replace(/[.,;:!]+$/, '')
    .replace(/^(the|a|an) /, '')
    .trim();
}

/** Non-empty lines of an answer, trimmed. */
export function answerLines(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.length > 0);
}

/** A line's leading enumeration ("3.", "3)", "3:", "3 -", "-", "*") removed; the number when there was one. */
export function splitEnumeration(line: string): { index: number | null; text: string } {
  const numbered = /^(\d+)\s*[.):-]\s*(.*)$/.exec(line);
  if (numbered) return { index: Number(numbered[1]), text: numbered[2].trim() };
  return { index: null, text: line.replace(/^[-*•]\s*/, '').trim() };
}
