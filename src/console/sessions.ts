/**
 * The console's cookies and tokens. A session token is 32 random bytes; the browser holds it in the
 * `payouts_console` cookie and the database only its SHA-256. Every cookie the console sets is `HttpOnly`,
 * `SameSite=Strict`, scoped to `/console`, expiring, and `Secure` unless `CONSOLE_SECURE_COOKIES=false`. The CSRF
 * token travels in the page (a hidden field of every form), never in a cookie a script could read.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

export const SESSION_COOKIE = 'payouts_console';
/** Before sign-in: the sign-in form's CSRF token, compared with the one the form posts back. */
export const SIGN_IN_COOKIE = 'payouts_console_signin';
export const COOKIE_PATH = '/console';
/** How long the sign-in form's token lives. */
export const SIGN_IN_TTL_SECONDS = 15 * 60;

export function newToken(): string {
  return randomBytes(32).toString('base64url');
}

/** The form a session token is stored in. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** True when both are the same non-empty token; the time taken does not depend on where they differ. */
export function sameToken(given: unknown, expected: string): boolean {
  if (typeof given !== 'string' || given === '' || expected === '') return false;
  const a = createHash('sha256').update(given, 'utf8').digest();
  const b = createHash('sha256').update(expected, 'utf8').digest();
  return timingSafeEqual(a, b);
}

/** What a token must look like (a cookie of any other shape is ignored). */
export function isToken(value: unknown): value is string {
  return typeof value === 'string' && /^[A-Za-z0-9_-]{43}$/.test(value);
}

export function parseCookies(header: string | undefined): Record<string, string> {
  const cookies: Record<string, string> = {};
  if (!header) return cookies;
  for (const part of header.split(';')) {
    const index = part.indexOf('=');
    if (index === -1) continue;
    const name = part.slice(0, index).trim();
    if (name !== '' && !(name in cookies)) cookies[name] = part.slice(index + 1).trim();
  }
  return cookies;
}

export interface CookieOptions {
  secure: boolean;
  maxAgeSeconds: number;
}

/** A `Set-Cookie` value of the console: HttpOnly, SameSite=Strict, Path=/console, expiring; Secure unless told. */
export function setCookie(name: string, value: string, options: CookieOptions): string {
  const expires = new Date(Date.now() + options.maxAgeSeconds * 1000).toUTCString();
  return [
    `${name}=${value}`,
    `Path=${COOKIE_PATH}`,
    `Max-Age=${options.maxAgeSeconds}`,
    `Expires=${expires}`,
    'HttpOnly',
    'SameSite=Strict',
    ...(options.secure ? ['Secure'] : []),
  ].join('; ');
}

/** A `Set-Cookie` value that removes the cookie (same attributes, expired). */
export function clearCookie(name: string, secure: boolean): string {
  return [
    `${name}=`,
    `Path=${COOKIE_PATH}`,
    'Max-Age=0',
    'Expires=Thu, 01 Jan 1970 00:00:00 GMT',
    'HttpOnly',
    'SameSite=Strict',
    ...(secure ? ['Secure'] : []),
  ].join('; ');
}
