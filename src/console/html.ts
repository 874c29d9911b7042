/**
 * HTML made safe by default: `html` escapes every value interpolated into it, except markup made by `html` itself
 * (or, rarely, `trusted`). Arrays are joined; `null`, `undefined` and `false` render nothing.
 */

const SAFE = Symbol('safe html');

export interface Html {
  readonly [SAFE]: true;
  readonly text: string;
}

const ESCAPES: Readonly<Record<string, string>> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
  '`': '&#96;',
};

export function escapeHtml(value: string): string {
  return value.replace(/[&<>"'`]/g, (char) => ESCAPES[char]!);
}

function isHtml(value: unknown): value is Html {
  return typeof value === 'object' && value !== null && (value as Partial<Html>)[SAFE] === true;
}

function render(value: unknown): string {
  if (value === null || value === undefined || value === false) return '';
  if (isHtml(value)) return value.text;
  if (Array.isArray(value)) return value.map(render).join('');
  if (typeof value === 'string') return escapeHtml(value);
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint')
    return String(value);
  // Nothing else belongs in a page; should it come, it is shown as data, escaped.
  return escapeHtml(JSON.stringify(value) ?? '');
}

/** Markup from a template: every interpolated value is escaped unless it is `Html` already. */
export function html(strings: TemplateStringsArray, ...values: unknown[]): Html {
  let text = strings[0]!;
  values.forEach((value, index) => {
    text += render(value) + strings[index + 1]!;
  });
  return { [SAFE]: true, text };
}

/** Markup written by this module's own code, never from input (e.g. the generated SVG's numbers). */
export function trusted(text: string): Html {
  return { [SAFE]: true, text };
}
