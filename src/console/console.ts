/**
 * The operator console: server-rendered pages under `/console` for the people who resolve payouts. It is an
 * Express router the API mounts on `/console` only (nothing of it runs for `/api/*`), built on the same service as
 * the API: every read and every action goes through `PayoutService` and `WebhookService` with the signed-in
 * operator's principal (role `operator`, the key's client, actor `key:<id>`), so the machine, the role rules and
 * tenancy hold exactly as they do for the API. Dead letters go through the DLQ tools (src/dlq), limited to the
 * payouts the operator's client owns.
 *
 * Security: an operator key is exchanged for a session (see sessions.ts); the session cookie is read here only,
 * never by the API (which reads `Authorization: Bearer` alone). Every POST carries the CSRF token of its form:
 * the session's, or before sign-in the one of the sign-in form's own cookie. Every response carries a CSP that
 * allows the app's own files only (no inline script or style) and forbids framing. The request body (the key typed
 * at sign-in) is never logged: the access log has method, route, path and status only.
 */
import express, { Router } from 'express';
import type { NextFunction, Request, Response } from 'express';
import type { ApiKeys } from '../domain/api-keys.js';
import { DomainError, PayoutNotFound, Unauthenticated } from '../domain/errors.js';
import type { PayoutHistoryEntry } from '../domain/payout.js';
import { toPayoutResource } from '../domain/payout-resource.js';
import type { PayoutService } from '../domain/payout-service.js';
import type { Principal } from '../domain/principal.js';
import { isCanonicalUuid } from '../domain/text.js';
import type { WebhookDelivery } from '../domain/webhooks.js';
import type { WebhookService } from '../domain/webhook-service.js';
import type { DeadLetter } from '../dlq/dead-letters.js';
import { matchesFilter } from '../dlq/dead-letters.js';
import { problemOfDomain } from '../http/problem.js';
import { requestState } from '../http/request-context.js';
import { decodeCursor, encodeCursor } from '../http/resources.js';
import type { Logger } from '../logger.js';
import { machineDefinition } from '../machines/definition.js';
import type { PayoutStage, PayoutStatus } from '../machines/payout-lifecycle.js';
import { PAYOUT_STAGES, PAYOUT_STATUSES } from '../machines/payout-lifecycle.js';
import { BrokerUnreachable } from '../messaging/amqp.js';
import type { ConsoleSession, ConsoleSessionStore } from '../persistence/console-sessions.js';
import type { DeadLetterDesk } from './dead-letters.js';
import { stateDiagram } from './diagram.js';
import { html } from './html.js';
import type { DeadLetterFilters, Layout, ListFilters, Notice } from './pages.js';
import {
  attentionPage,
  confirmPage,
  deadLettersPage,
  messagePage,
  payoutPage,
  payoutsPage,
  signInPage,
} from './pages.js';
import {
  SESSION_COOKIE,
  SIGN_IN_COOKIE,
  SIGN_IN_TTL_SECONDS,
  clearCookie,
  hashToken,
  isToken,
  newToken,
  parseCookies,
  sameToken,
  setCookie,
} from './sessions.js';
import { CONSOLE_CSS } from './styles.js';

/** The console's Content-Security-Policy: the app's own files only, no inline script or style, never framed. */
export const CONSOLE_CSP = "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'";

export interface ConsoleSettings {
  /** `Secure` on every cookie (`CONSOLE_SECURE_COOKIES`). */
  secureCookies: boolean;
  /** A session's life (`CONSOLE_SESSION_HOURS`). */
  sessionHours: number;
  /** What "stuck" means on the needs-attention page (`STUCK_AFTER_SECONDS`, the sweeper's threshold). */
  stuckAfterSeconds: number;
  /** The accepted currencies, for the list's filter. */
  currencies: readonly string[];
}

export interface ConsoleDeps {
  service: PayoutService;
  webhooks: WebhookService;
  keys: ApiKeys;
  sessions: ConsoleSessionStore;
  deadLetters: DeadLetterDesk;
  log: Logger;
  settings: ConsoleSettings;
}

/** The signed-in operator of a request. */
interface Operator {
  principal: Principal;
  session: ConsoleSession;
  idHash: string;
}

const PAGE_SIZE = 25;
const HISTORY_PAGES = 5;
/** Dead letters read per page view: their payouts are each looked up to keep other clients' letters out. */
const DEAD_LETTERS_READ = 500;
const ACTIONS = ['fail', 'succeed', 'cancel', 'retry'] as const;
type Action = (typeof ACTIONS)[number];
const REQUESTED_STATUS: Readonly<Record<Exclude<Action, 'retry'>, PayoutStatus>> = {
  fail: 'failed',
  succeed: 'completed',
  cancel: 'cancelled',
};

const FAVICON =
  '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="3" fill="#0b57d0"/></svg>';

export function operatorConsole(deps: ConsoleDeps): Router {
  const { service, webhooks, keys, sessions, deadLetters, log, settings } = deps;
  const definition = machineDefinition();
  const secure = settings.secureCookies;
  const router = Router();

  router.use((_req, res, next) => {
    res.setHeader('Content-Security-Policy', CONSOLE_CSP);
    res.setHeader('Referrer-Policy', 'no-referrer');
    res.setHeader('X-Frame-Options', 'DENY');
    res.setHeader('Cache-Control', 'no-store');
    next();
  });

  router.get('/console.css', (_req, res) => {
    res.setHeader('Cache-Control', 'no-cache');
    res.type('css').send(CONSOLE_CSS);
  });
  router.get('/favicon.svg', (_req, res) => {
    res.setHeader('Cache-Control', 'no-cache');
    res.type('image/svg+xml').send(FAVICON);
  });

  // Forms only: no other body is read, and nothing here logs one.
  router.use(express.urlencoded({ extended: false, limit: '16kb', parameterLimit: 50 }));

  async function operatorOf(req: Request): Promise<Operator | undefined> {
    const token = parseCookies(req.headers.cookie)[SESSION_COOKIE];
    if (!isToken(token)) return undefined;
    const idHash = hashToken(token);
    const session = await sessions.findActive(idHash);
    if (!session) return undefined;
    return {
      principal: { clientId: session.clientId, role: 'operator', actor: `key:${session.keyId}` },
      session,
      idHash,
    };
  }

  router.get('/', async (req, res) => {
    res.redirect(303, (await operatorOf(req)) ? '/console/payouts' : '/console/sign-in');
  });

  // ----------------------------------------------------------------------------------------------------- sign-in

  function showSignIn(res: Response, status: number, message?: Notice): void {
    const csrf = newToken();
    res.setHeader(
      'Set-Cookie',
      setCookie(SIGN_IN_COOKIE, csrf, { secure, maxAgeSeconds: SIGN_IN_TTL_SECONDS }),
    );
    res.status(status).type('html').send(signInPage(csrf, message));
  }

  router.get('/sign-in', (req, res) => {
    const signedOut = req.query.signed_out === '1';
    showSignIn(
      res,
      200,
      signedOut ? { tone: 'info', title: 'Signed out.', detail: 'Your session has ended.' } : undefined,
    );
  });

  router.post('/sign-in', async (req, res) => {
    const body = formOf(req);
    const expected = parseCookies(req.headers.cookie)[SIGN_IN_COOKIE];
    if (!isToken(expected) || !sameToken(body.csrf, expected)) {
      showSignIn(res, 403, {
        tone: 'error',
        title: 'The sign-in form expired or did not come from this console.',
        detail: 'Type your key again.',
      });
      return;
    }
    let principal: Principal;
    try {
      principal = await keys.authenticate(typeof body.key === 'string' ? body.key.trim() : undefined);
    } catch (error) {
      if (!(error instanceof Unauthenticated)) throw error;
      log.info({ outcome: 'unknown_key' }, 'console sign-in refused');
      showSignIn(res, 401, { tone: 'error', title: 'The key is unknown, revoked or expired.' });
      return;
    }
    if (principal.role !== 'operator') {
      log.info({ outcome: 'not_operator', actor: principal.actor }, 'console sign-in refused');
      showSignIn(res, 403, {
        tone: 'error',
        title: 'Operator key required.',
        detail: 'Client keys cannot sign in to the console.',
      });
      return;
    }
    const token = newToken();
    const maxAgeSeconds = settings.sessionHours * 3600;
    await sessions.create({
      idHash: hashToken(token),
      keyId: principal.actor.replace(/^key:/, ''),
      clientId: principal.clientId,
      csrfToken: newToken(),
      expiresAt: new Date(Date.now() + maxAgeSeconds * 1000),
    });
    log.info({ actor: principal.actor }, 'console sign-in');
    res.setHeader('Set-Cookie', [
      setCookie(SESSION_COOKIE, token, { secure, maxAgeSeconds }),
      clearCookie(SIGN_IN_COOKIE, secure),
    ]);
    res.redirect(303, '/console/payouts');
  });

  // ------------------------------------------------------------------------------------- everything else: signed in

  router.use(async (req, res, next) => {
    const operator = await operatorOf(req);
    if (operator) {
      res.locals.operator = operator;
      next();
      return;
    }
    if (parseCookies(req.headers.cookie)[SESSION_COOKIE] !== undefined) {
      res.setHeader('Set-Cookie', clearCookie(SESSION_COOKIE, secure));
    }
    if (req.method === 'GET' || req.method === 'HEAD') {
      res.redirect(303, '/console/sign-in');
      return;
    }
    res
      .status(401)
      .type('html')
      .send(
        messagePage(
          { title: 'Signed out' },
          {
            tone: 'error',
            title: 'Signed out',
            detail: 'Your session has ended or was revoked; sign in again.',
          },
          html`<p><a href="/console/sign-in">Sign in</a></p>`,
        ),
      );
  });

  router.use((req, res, next) => {
    if (req.method !== 'POST') {
      next();
      return;
    }
    if (sameToken(formOf(req).csrf, operatorIn(res).session.csrfToken)) {
      next();
      return;
    }
    log.warn(
      { path: req.path, actor: operatorIn(res).principal.actor },
      'console: POST without a valid CSRF token',
    );
    res
      .status(403)
      .type('html')
      .send(
        messagePage(
          layoutOf(res, 'Refused'),
          {
            tone: 'error',
            title: 'Refused',
            detail: "The form's security token is missing or wrong (403). Reload the page and try again.",
          },
          html`<p><a href="/console/payouts">Back to the payouts</a></p>`,
        ),
      );
  });

  router.post('/sign-out', async (_req, res) => {
    const operator = operatorIn(res);
    await sessions.revoke(operator.idHash);
    log.info({ actor: operator.principal.actor }, 'console sign-out');
    res.setHeader('Set-Cookie', clearCookie(SESSION_COOKIE, secure));
    res.redirect(303, '/console/sign-in?signed_out=1');
  });

  // ----------------------------------------------------------------------------------------------------- payouts

  const listOptions = {
    statuses: PAYOUT_STATUSES,
    stages: PAYOUT_STAGES,
    currencies: settings.currencies,
  };

  async function showList(
    query: Request['query'],
    res: Response,
    status: number,
    message?: Notice,
  ): Promise<void> {
    const { principal } = operatorIn(res);
    const filters: ListFilters = {
      status: one(query.status),
      stage: one(query.stage),
      currency: one(query.currency),
      created_gte: one(query.created_gte),
      created_lt: one(query.created_lt),
    };
    const problems: string[] = [];
    if (filters.status !== undefined && !(PAYOUT_STATUSES as readonly string[]).includes(filters.status))
      problems.push(`status must be one of ${PAYOUT_STATUSES.join(', ')}`);
    if (filters.stage !== undefined && !(PAYOUT_STAGES as readonly string[]).includes(filters.stage))
      problems.push(`stage must be one of ${PAYOUT_STAGES.join(', ')}`);
    const createdGte = instant(filters.created_gte, 'created from', problems);
    const createdLt = instant(filters.created_lt, 'created before', problems);
    const cursor = one(query.cursor);
    const after = cursor === undefined ? undefined : decodeCursor(cursor);
    if (after === null) problems.push('the page link is not one this console made');
    if (problems.length > 0) {
      res
        .status(400)
        .type('html')
        .send(
          payoutsPage(layoutOf(res, 'Payouts'), {
            payouts: [],
            filters,
            nextHref: null,
            options: listOptions,
            message: {
              tone: 'error',
              title: 'The filters are not valid.',
              detail: problems.join('; ') + '.',
            },
          }),
        );
      return;
    }
    const result = await service.listPayouts(principal, {
      limit: PAGE_SIZE,
      after: after ?? undefined,
      status: filters.status as PayoutStatus | undefined,
      stage: filters.stage as PayoutStage | undefined,
      currency: filters.currency,
      createdGte,
      createdLt,
    });
    let nextHref: string | null = null;
    if (result.next !== null) {
      const query = new URLSearchParams();
      for (const [name, value] of Object.entries(filters) as Array<[string, string | undefined]>) {
        if (value !== undefined) query.set(name, value);
      }
      query.set('cursor', encodeCursor(result.next));
      nextHref = `/console/payouts?${query.toString()}`;
    }
    res
      .status(status)
      .type('html')
      .send(
        payoutsPage(layoutOf(res, 'Payouts'), {
          payouts: result.items.map((payout) => toPayoutResource(payout, principal)),
          filters,
          nextHref,
          options: listOptions,
          message,
        }),
      );
  }

  router.get('/payouts', (req, res) => showList(req.query, res, 200));

  router.get('/payouts/search', async (req, res) => {
    const id = (one(req.query.id) ?? '').trim().toLowerCase();
    if (isCanonicalUuid(id)) {
      res.redirect(303, `/console/payouts/${id}`);
      return;
    }
    await showList({}, res, 400, {
      tone: 'error',
      title: 'Not a payout id.',
      detail: 'Type or paste a full payout id, like 0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b.',
    });
  });

  async function showPayout(res: Response, id: string, status: number, outcome?: Notice): Promise<void> {
    const { principal } = operatorIn(res);
    const payout = await service.getPayout(principal, id);
    const history: PayoutHistoryEntry[] = [];
    let after: string | undefined;
    let truncated = false;
    for (let pageIndex = 0; pageIndex < HISTORY_PAGES; pageIndex += 1) {
      const events = await service.listEvents(principal, payout.id, { limit: 100, after });
      history.push(...events.items);
      if (events.next === null) break;
      after = events.next;
      truncated = pageIndex === HISTORY_PAGES - 1;
    }
    const deliveries = await deliveriesOf(principal, payout.id);
    res
      .status(status)
      .type('html')
      .send(
        payoutPage(layoutOf(res, 'Payout') as SignedLayout, {
          payout: toPayoutResource(payout, principal),
          history,
          historyTruncated: truncated,
          diagram: stateDiagram(definition, { status: payout.status, stage: payout.stage }),
          deliveries,
          outcome,
        }),
      );
  }

  /** The payout's deliveries to each of the client's endpoints, newest first. */
  async function deliveriesOf(principal: Principal, payoutId: string): Promise<WebhookDelivery[]> {
    const all: WebhookDelivery[] = [];
    let after: string | undefined;
    for (let pageIndex = 0; pageIndex < 10; pageIndex += 1) {
      const endpoints = await webhooks.listEndpoints(principal, { limit: 100, after });
      for (const endpoint of endpoints.items) {
        const page = await webhooks.listDeliveries(principal, endpoint.id, { limit: 100, payoutId });
        all.push(...page.items);
      }
      if (endpoints.next === null) break;
      after = endpoints.next;
    }
    return all.sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime());
  }

  router.get('/payouts/:id', async (req, res) => {
    await showPayout(res, String(req.params.id), 200);
  });

  router.post('/payouts/:id/actions', async (req, res) => {
    const { principal } = operatorIn(res);
    const id = String(req.params.id);
    const body = formOf(req);
    const action = ACTIONS.find((candidate) => candidate === body.action);
    const version =
      typeof body.version === 'string' && /^\d{1,10}$/.test(body.version) ? Number(body.version) : undefined;
    const reason = typeof body.reason === 'string' ? body.reason : undefined;
    if (action === undefined) {
      await showPayout(res, id, 400, { tone: 'error', title: 'Unknown action.' });
      return;
    }
    const options = { requestId: requestState(res).requestId, expectedVersion: version, reason };
    try {
      const result =
        action === 'retry'
          ? await service.retryPayout(principal, id, options)
          : await service.updatePayout(principal, id, { status: REQUESTED_STATUS[action] }, options);
      log.info({ actor: principal.actor, payout_id: id, action }, 'console: operator action');
      const outcome: Notice = result.accepted
        ? {
            tone: 'ok',
            title: 'Requested (202 Accepted): the worker will carry it out against the provider.',
            detail: ` The payout is ${result.payout.status} until the provider has answered; reload this page to follow it.`,
          }
        : {
            tone: 'ok',
            title: `Done (200 OK): the payout is now ${result.payout.status}.`,
          };
      await showPayout(res, id, result.accepted ? 202 : 200, outcome);
    } catch (error) {
      if (!(error instanceof DomainError) || error instanceof PayoutNotFound) throw error;
      const status = problemOfDomain(error, 'body').status;
      await showPayout(res, id, status, actionRefusal(error, status));
    }
  });

  // --------------------------------------------------------------------------------------------- needs attention

  router.get('/attention', async (_req, res) => {
    const { principal } = operatorIn(res);
    const payouts = await service.listNeedingAttention(principal, {
      limit: 100,
      stuckAfterSeconds: settings.stuckAfterSeconds,
    });
    res.type('html').send(
      attentionPage(
        layoutOf(res, 'Needs attention'),
        payouts.map((payout) => toPayoutResource(payout, principal)),
        settings.stuckAfterSeconds,
      ),
    );
  });

  // ------------------------------------------------------------------------------------------------ dead letters

  /**
   * The dead letters this operator may see: those of payouts their client owns (looked up through the service, as
   * the operator). Letters of other clients' payouts, and letters without a payout id, are hidden.
   */
  async function visibleDeadLetters(
    principal: Principal,
  ): Promise<{ letters: DeadLetter[]; payoutIds: Set<string>; hidden: number }> {
    const all = await deadLetters.list(DEAD_LETTERS_READ);
    const ids = [...new Set(all.map((letter) => letter.payoutId).filter((id): id is string => id !== null))];
    const owned = new Set<string>();
    await Promise.all(
      ids.map(async (id) => {
        try {
          await service.getPayout(principal, id);
          owned.add(id);
        } catch (error) {
          if (!(error instanceof PayoutNotFound)) throw error;
        }
      }),
    );
    const letters = all.filter((letter) => letter.payoutId !== null && owned.has(letter.payoutId));
    return { letters, payoutIds: owned, hidden: all.length - letters.length };
  }

  router.get('/dead-letters', async (req, res) => {
    const filters = deadLetterFilters(req.query);
    const { letters, hidden } = await visibleDeadLetters(operatorIn(res).principal);
    res.type('html').send(
      deadLettersPage(layoutOf(res, 'Dead letters') as SignedLayout, {
        letters: letters.filter((letter) => matchesFilter(letter, filters)),
        filters,
        hidden,
        now: new Date(),
      }),
    );
  });

  router.post('/dead-letters/preview', async (req, res) => {
    const body = formOf(req);
    const action = body.action === 'drop' ? 'drop' : body.action === 'replay' ? 'replay' : undefined;
    if (action === undefined) throw new BadForm('action must be replay or drop');
    const filters = deadLetterFilters(body);
    const { payoutIds } = await visibleDeadLetters(operatorIn(res).principal);
    let letters: DeadLetter[];
    let refused = 0;
    if (action === 'replay') {
      const report = await deadLetters.replay({ ...filters, payoutIds, dryRun: true });
      letters = report.letters;
      refused = report.refused;
    } else {
      letters = (await deadLetters.drop({ ...filters, payoutIds, dryRun: true })).matched;
    }
    res
      .type('html')
      .send(confirmPage(layoutOf(res, 'Confirm') as SignedLayout, { action, filters, letters, refused }));
  });

  router.post('/dead-letters/apply', async (req, res) => {
    const { principal } = operatorIn(res);
    const body = formOf(req);
    const action = body.action === 'drop' ? 'drop' : body.action === 'replay' ? 'replay' : undefined;
    if (action === undefined) throw new BadForm('action must be replay or drop');
    const confirm =
      typeof body.confirm === 'string' && /^\d{1,6}$/.test(body.confirm.trim())
        ? Number(body.confirm.trim())
        : undefined;
    const filters = deadLetterFilters(body);
    const { payoutIds } = await visibleDeadLetters(principal);
    let message: Notice;
    let status = 200;
    if (action === 'replay') {
      const preview = await deadLetters.replay({ ...filters, payoutIds, dryRun: true });
      if (confirm === undefined || confirm !== preview.replayed) {
        status = 409;
        message = countChanged('replayed', preview.replayed, confirm);
      } else {
        const report = await deadLetters.replay({ ...filters, payoutIds, limit: confirm });
        log.info(
          { actor: principal.actor, replayed: report.replayed, ...filters },
          'console: dead letters replayed',
        );
        message =
          report.failed > 0
            ? {
                tone: 'error',
                title: `Replayed ${report.replayed}; one could not be published and stays in the queue.`,
              }
            : { tone: 'ok', title: `Replayed ${report.replayed} dead letter(s) to the work queue.` };
      }
    } else {
      const report = await deadLetters.drop({ ...filters, payoutIds, confirm });
      if (report.dropped === 0 && (confirm === undefined || confirm !== report.matched.length)) {
        status = 409;
        message = countChanged('dropped', report.matched.length, confirm);
      } else {
        log.info(
          { actor: principal.actor, dropped: report.dropped, ...filters },
          'console: dead letters dropped',
        );
        message = { tone: 'ok', title: `Dropped ${report.dropped} dead letter(s) for good.` };
      }
    }
    const visible = await visibleDeadLetters(principal);
    res
      .status(status)
      .type('html')
      .send(
        deadLettersPage(layoutOf(res, 'Dead letters') as SignedLayout, {
          letters: visible.letters,
          filters: {},
          hidden: visible.hidden,
          now: new Date(),
          message,
        }),
      );
  });

  // ----------------------------------------------------------------------------------------------- not found, errors

  router.use((_req, res) => {
    res
      .status(404)
      .type('html')
      .send(
        messagePage(
          layoutOf(res, 'Not found'),
          { tone: 'error', title: 'Not found', detail: 'There is no such page in the console.' },
          html`<p><a href="/console/payouts">Back to the payouts</a></p>`,
        ),
      );
  });

  router.use((error: unknown, req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) {
      next(error);
      return;
    }
    const { status, notice } = errorPage(error);
    if (status >= 500 && !(error instanceof BrokerUnreachable)) {
      requestStateOrLog(res, log).error({ err: error, path: req.path }, 'console request failed');
    }
    res
      .status(status)
      .type('html')
      .send(
        messagePage(
          layoutOf(res, notice.title),
          notice,
          html`<p><a href="/console/payouts">Back to the payouts</a></p>`,
        ),
      );
  });

  return router;
}

type SignedLayout = Layout & { session: { csrf: string; actor: string } };

class BadForm extends Error {}

function operatorIn(res: Response): Operator {
  const operator = res.locals.operator as Operator | undefined;
  if (!operator) throw new Error('a console page without a signed-in operator');
  return operator;
}

function layoutOf(res: Response, title: string): Layout {
  const operator = res.locals.operator as Operator | undefined;
  return operator
    ? { title, session: { csrf: operator.session.csrfToken, actor: operator.principal.actor } }
    : { title };
}

function requestStateOrLog(res: Response, log: Logger): Logger {
  try {
    return requestState(res).log;
  } catch {
    return log;
  }
}

/** The form's fields (an `application/x-www-form-urlencoded` body), or none. */
function formOf(req: Request): Record<string, unknown> {
  const body = req.body as unknown;
  return typeof body === 'object' && body !== null ? (body as Record<string, unknown>) : {};
}

/** One non-empty string parameter (the first, if repeated). */
function one(value: unknown): string | undefined {
  const first = Array.isArray(value) ? (value[0] as unknown) : value;
  return typeof first === 'string' && first.trim() !== '' ? first.trim() : undefined;
}

/** A `datetime-local` value (read as UTC) or an RFC 3339 instant. */
function instant(value: string | undefined, name: string, problems: string[]): Date | undefined {
  if (value === undefined) return undefined;
  const local = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?$/.test(value);
  const date = new Date(local ? `${value}Z` : value);
  if (Number.isNaN(date.getTime()) || !/^\d{4}-\d{2}-\d{2}T/.test(value)) {
    problems.push(`${name} must be a date and time like 2026-12-01T09:30`);
    return undefined;
  }
  return date;
}

function deadLetterFilters(source: Record<string, unknown>): DeadLetterFilters {
  const reason = one(source.reason);
  const id = one(source.id);
  return { ...(reason === undefined ? {} : { reason }), ...(id === undefined ? {} : { id }) };
}

function countChanged(verb: string, now: number, confirmed: number | undefined): Notice {
  return {
    tone: 'error',
    title: `Nothing was ${verb} (409 Conflict).`,
    detail:
      confirmed === undefined
        ? `Type the number of dead letters to confirm; ${now} match now.`
        : `You confirmed ${confirmed}, but ${now} match now: the queue changed. Look again and confirm the new count.`,
  };
}

/** What an action's refusal by the service means, in words, with the API's status. */
function actionRefusal(error: DomainError, status: number): Notice {
  switch (status) {
    case 409:
      return {
        tone: 'error',
        title: 'Not allowed now (409 Conflict).',
        detail: ` ${error.detail} The actions open to you now are listed below.`,
      };
    case 412:
      return {
        tone: 'error',
        title: 'The payout changed since you loaded the page (412 Precondition Failed).',
        detail: ' Nothing was done. Read it again below, then decide once more.',
      };
    case 400:
      return {
        tone: 'error',
        title: 'Refused (400 Bad Request).',
        detail: ` ${(error.fields ?? []).map((field) => `${field.field} ${field.message}`).join('; ') || error.detail}.`,
      };
    case 403:
      return { tone: 'error', title: 'Not yours to do (403 Forbidden).', detail: ` ${error.detail}` };
    default:
      return { tone: 'error', title: `Refused (${status}).`, detail: ` ${error.detail}` };
  }
}

function errorPage(error: unknown): { status: number; notice: Notice } {
  if (error instanceof PayoutNotFound) {
    return {
      status: 404,
      notice: {
        tone: 'error',
        title: 'Payout not found',
        detail: `${error.detail} Check the id; payouts of other clients are not shown.`,
      },
    };
  }
  if (error instanceof BrokerUnreachable) {
    return {
      status: 503,
      notice: {
        tone: 'error',
        title: 'Broker unreachable',
        detail: 'The broker is unreachable; dead letters cannot be read now. Try again in a moment.',
      },
    };
  }
  if (error instanceof BadForm) {
    return { status: 400, notice: { tone: 'error', title: 'Bad request', detail: `${error.message}.` } };
  }
  if (error instanceof DomainError) {
    const status = problemOfDomain(error, 'body').status;
    return { status, notice: { tone: 'error', title: error.title, detail: error.detail } };
  }
  const fields = (error ?? {}) as { type?: unknown; status?: unknown };
  if (fields.type === 'entity.too.large') {
    return {
      status: 413,
      notice: { tone: 'error', title: 'Too large', detail: 'The form is larger than 16 KiB.' },
    };
  }
  if (typeof fields.status === 'number' && fields.status >= 400 && fields.status < 500) {
    return {
      status: 400,
      notice: { tone: 'error', title: 'Bad request', detail: 'The request cannot be read.' },
    };
  }
  return {
    status: 500,
    notice: {
      tone: 'error',
      title: 'Something went wrong',
      detail: 'The console could not answer; the error is logged.',
    },
  };
}
