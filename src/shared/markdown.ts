/**
 * Values from a user's files (group names, column names, paths, override reasons) put into report.md
 * and FAIRNESS.md: escaped so that a value cannot end a table cell, open a code span, inject HTML or
 * a link, or start a new line.
 */

/**
 * Text for a Markdown table cell or sentence: `\`, `|`, backticks, `<`, `>`, `&` escaped, a `]` that
 * would close a link (`](` or `][`) escaped, line breaks as spaces. A bracket alone is left as it is, so
 * intervals such as `[3.2%, 7.3%]` read plainly in the raw file.
 */
export function mdText(value: unknown): string {
  return String(value)
    .replace(/\r\n|\r|\n/g, ' ')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/([\\`|])/g, '\\$1')
    .replace(/\](?=[([])/g, '\\]');
}

/** An inline code span holding `value` exactly: fenced with more backticks than any run inside it. */
export function mdCode(value: unknown): string {
  const s = String(value).replace(/\r\n|\r|\n/g, ' ');
  const longest = Math.max(0, ...(s.match(/`+/g) ?? []).map((run) => run.length));
  const fence = '`'.repeat(longest + 1);
  const pad = s.startsWith('`') || s.endsWith('`') ? ' ' : '';
  return `${fence}${pad}${s}${pad}${fence}`;
}
