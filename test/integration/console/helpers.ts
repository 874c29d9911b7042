/**
 * The operator console as a browser without JavaScript sees it, over fetch: cookies kept by hand, forms posted as
 * `application/x-www-form-urlencoded`, redirects not followed (their status and headers are what is checked).
 */
import { expect } from 'chai';

export interface ConsoleResponse {
  status: number;
  headers: Headers;
  text: string;
  /** Every `Set-Cookie` of the response, as sent. */
  setCookies: string[];
}

export const SESSION_COOKIE = 'payouts_console';
export const SIGN_IN_COOKIE = 'payouts_console_signin';

/** A `Set-Cookie` value as its name, value and attributes (names lower-cased). */
export function parseSetCookie(header: string): {
  name: string;
  value: string;
  attributes: Record<string, string>;
} {
  const [pair = '', ...rest] = header.split(';');
  const index = pair.indexOf('=');
  const attributes: Record<string, string> = {};
  for (const part of rest) {
    const [name = '', ...value] = part.trim().split('=');
    attributes[name.toLowerCase()] = value.join('=');
  }
  return { name: pair.slice(0, index).trim(), value: pair.slice(index + 1).trim(), attributes };
}

/** A client of the console: a cookie jar and the last CSRF token a page carried. */
export class ConsoleClient {
  readonly cookies = new Map<string, string>();
  csrf: string | undefined;

  constructor(readonly baseUrl: string) {}

  async send(
    method: string,
    path: string,
    form?: Record<string, string>,
    headers: Record<string, string> = {},
  ): Promise<ConsoleResponse> {
    const sent: Record<string, string> = { ...headers };
    if (this.cookies.size > 0 && sent.cookie === undefined) {
      sent.cookie = [...this.cookies].map(([name, value]) => `${name}=${value}`).join('; ');
    }
    let body: string | undefined;
    if (form !== undefined) {
      body = new URLSearchParams(form).toString();
      sent['content-type'] ??= 'application/x-www-form-urlencoded';
    }
    const response = await fetch(`${this.baseUrl}${path}`, {
      method,
      headers: sent,
      body,
      redirect: 'manual',
    });
    const text = await response.text();
    const setCookies = response.headers.getSetCookie();
    for (const header of setCookies) {
      const cookie = parseSetCookie(header);
      if (cookie.attributes['max-age'] === '0') this.cookies.delete(cookie.name);
      else this.cookies.set(cookie.name, cookie.value);
    }
    const csrf = /name="csrf"\s+value="([^"]+)"/.exec(text);
    if (csrf) this.csrf = csrf[1];
    return { status: response.status, headers: response.headers, text, setCookies };
  }

  get(path: string): Promise<ConsoleResponse> {
    return this.send('GET', path);
  }

  /** A form post with the current CSRF token (unless the form sets its own `csrf`). */
  post(path: string, form: Record<string, string> = {}): Promise<ConsoleResponse> {
    return this.send('POST', path, { csrf: this.csrf ?? '', ...form });
  }

  /** Loads the sign-in form and posts `key` with it: the answer to the post. */
  async signIn(key: string): Promise<ConsoleResponse> {
    const form = await this.get('/console/sign-in');
    expect(form.status).to.equal(200);
    return this.post('/console/sign-in', { key });
  }

  /** Signs in with an operator key and loads the payouts page (which carries the session's CSRF token). */
  async signedIn(key: string): Promise<this> {
    const answer = await this.signIn(key);
    expect(answer.status, answer.text.slice(0, 500)).to.equal(303);
    expect(answer.headers.get('location')).to.equal('/console/payouts');
    const list = await this.get('/console/payouts');
    expect(list.status).to.equal(200);
    return this;
  }
}

/** `default-src 'self'; …` → { 'default-src': ["'self'"], … } */
export function parseCsp(header: string | null): Record<string, string[]> {
  const directives: Record<string, string[]> = {};
  for (const part of (header ?? '').split(';')) {
    const [name, ...values] = part.trim().split(/\s+/);
    if (name) directives[name.toLowerCase()] = values;
  }
  return directives;
}

/** The console's policy: own files only, no inline script or style, never framed, forms only to itself. */
export function expectConsoleCsp(response: { headers: Headers }, what: string): void {
  const csp = parseCsp(response.headers.get('content-security-policy'));
  expect(csp['default-src'], `${what}: default-src`).to.deep.equal(["'self'"]);
  expect(csp['frame-ancestors'], `${what}: frame-ancestors`).to.deep.equal(["'none'"]);
  expect(csp['form-action'], `${what}: form-action`).to.deep.equal(["'self'"]);
  expect(csp['base-uri'], `${what}: base-uri`).to.deep.equal(["'none'"]);
  expect(csp['script-src'], `${what}: no script source beyond default-src`).to.equal(undefined);
  expect(csp['style-src'], `${what}: no style source beyond default-src`).to.equal(undefined);
}
