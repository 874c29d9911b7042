/**
 * The console's pages, rendered on the server: plain HTML forms and links, no script. Every value is escaped by
 * `html`. Amounts are the API's decimal string and currency code, recipients masked as the API masks them (both
 * from `toPayoutResource`), statuses and stages written out in badges, never told by colour alone.
 */
import type { PayoutHistoryEntry } from '../domain/payout.js';
import type { PayoutResource } from '../domain/payout-resource.js';
import type { WebhookDelivery } from '../domain/webhooks.js';
import type { DeadLetter } from './dead-letters.js';
import type { Html } from './html.js';
import { html } from './html.js';

export type Section = 'payouts' | 'attention' | 'dead-letters';

export interface Layout {
  title: string;
  section?: Section;
  /** Signed in: the session's CSRF token (for the sign-out form) and who is signed in. */
  session?: { csrf: string; actor: string };
}

export type Tone = 'ok' | 'error' | 'info';

export interface Notice {
  tone: Tone;
  title: string;
  detail?: string;
}

const NAV: Array<[Section, string, string]> = [
  ['payouts', '/console/payouts', 'Payouts'],
  ['attention', '/console/attention', 'Needs attention'],
  ['dead-letters', '/console/dead-letters', 'Dead letters'],
];

export function page(layout: Layout, body: Html): string {
  const nav = layout.session
    ? html`<nav class="main" aria-label="Console">
          <ul>
            ${NAV.map(
              ([section, href, label]) =>
                html`<li>
                  <a href="${href}" ${layout.section === section ? html` aria-current="page"` : html``}
                    >${label}</a
                  >
                </li>`,
            )}
          </ul>
        </nav>
        <form class="inline" method="post" action="/console/sign-out">
          <input type="hidden" name="csrf" value="${layout.session.csrf}" />
          <span class="mono">${layout.session.actor}</span>
          <button type="submit" class="secondary">Sign out</button>
        </form>`
    : html``;
  return html`<!DOCTYPE html>
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <meta name="referrer" content="no-referrer" />
        <title>${layout.title} — Payouts console</title>
        <link rel="icon" href="/console/favicon.svg" type="image/svg+xml" />
        <link rel="stylesheet" href="/console/console.css" />
      </head>
      <body>
        <a class="skip-link" href="#main">Skip to content</a>
        <header class="top"><span class="brand">Payouts console</span>${nav}</header>
        <main id="main" tabindex="-1">${body}</main>
      </body>
    </html> `.text;
}

export function notice(value: Notice | undefined): Html {
  if (!value) return html``;
  return html`<div class="notice ${value.tone}" role="${value.tone === 'error' ? 'alert' : 'status'}">
    <strong>${value.title}</strong>${value.detail ? html`<span>${value.detail}</span>` : html``}
  </div>`;
}

function csrfField(csrf: string): Html {
  return html`<input type="hidden" name="csrf" value="${csrf}" />`;
}

export function statusBadge(status: string): Html {
  return html`<span class="badge status-${status}">${status}</span>`;
}

export function stageBadge(stage: string | null): Html {
  return stage === null
    ? html``
    : html` <span class="badge stage-${stage}">${stage.replace('_', ' ')}</span>`;
}

function amountOf(resource: Pick<PayoutResource, 'amount' | 'currency'>): string {
  return `${resource.amount} ${resource.currency}`;
}

/**
 * The payout's whole id as a link: ids are time-ordered UUIDs, whose first characters are the same for payouts
 * created within a minute of each other, so a shortened id would not tell them apart.
 */
function payoutLink(id: string): Html {
  return html`<a href="/console/payouts/${id}" class="mono" aria-label="Payout ${id}">${id}</a>`;
}

// ---------------------------------------------------------------------------------------------------------- sign-in

export function signInPage(csrf: string, message?: Notice): string {
  return page(
    { title: 'Sign in' },
    html`<div class="sign-in">
      <h1>Sign in</h1>
      ${notice(message)}
      <p>
        Sign in with an operator key (<code>make key NAME=… ROLE=operator</code>). Client keys cannot sign in.
      </p>
      <form method="post" action="/console/sign-in">
        ${csrfField(csrf)}
        <div class="field">
          <label for="key">Operator key</label>
          <input
            id="key"
            name="key"
            type="password"
            autocomplete="off"
            required
            spellcheck="false"
            autofocus
          />
        </div>
        <p><button type="submit">Sign in</button></p>
      </form>
    </div>`,
  );
}

// ---------------------------------------------------------------------------------------------------------- payouts

export interface ListFilters {
  status?: string;
  stage?: string;
  currency?: string;
  created_gte?: string;
  created_lt?: string;
}

function select(name: string, label: string, options: readonly string[], value: string | undefined): Html {
  return html`<div class="field">
    <label for="f-${name}">${label}</label
    ><select id="f-${name}" name="${name}">
      <option value="">any</option>
      ${options.map(
        (option) =>
          html`<option value="${option}" ${option === value ? html` selected` : html``}>${option}</option>`,
      )}
    </select>
  </div>`;
}

export function payoutsPage(
  layout: Layout,
  data: {
    payouts: PayoutResource[];
    filters: ListFilters;
    nextHref: string | null;
    options: { statuses: readonly string[]; stages: readonly string[]; currencies: readonly string[] };
    message?: Notice;
  },
): string {
  const { filters, options } = data;
  return page(
    { ...layout, title: 'Payouts', section: 'payouts' },
    html`<h1>Payouts</h1>
      ${notice(data.message)}
      <form method="get" action="/console/payouts/search" role="search">
        <div class="fields">
          <div class="field">
            <label for="search-id">Find a payout by its id</label>
            <input id="search-id" name="id" type="search" size="40" spellcheck="false" placeholder="0190…" />
          </div>
          <button type="submit">Find</button>
        </div>
      </form>
      <form method="get" action="/console/payouts">
        <fieldset>
          <legend>Filters</legend>
          <div class="fields">
            ${select('status', 'Status', options.statuses, filters.status)}
            ${select('stage', 'Stage', options.stages, filters.stage)}
            ${select('currency', 'Currency', options.currencies, filters.currency)}
            <div class="field">
              <label for="f-created_gte">Created from (UTC)</label
              ><input
                id="f-created_gte"
                name="created_gte"
                type="datetime-local"
                value="${filters.created_gte ?? ''}"
              />
            </div>
            <div class="field">
              <label for="f-created_lt">Created before (UTC)</label
              ><input
                id="f-created_lt"
                name="created_lt"
                type="datetime-local"
                value="${filters.created_lt ?? ''}"
              />
            </div>
            <button type="submit">Apply filters</button> <a href="/console/payouts">Clear</a>
          </div>
        </fieldset>
      </form>
      <table>
        <caption class="visually-hidden">
          Payouts, newest first
        </caption>
        <thead>
          <tr>
            <th scope="col">Id</th>
            <th scope="col">Status</th>
            <th scope="col" class="amount">Amount</th>
            <th scope="col">Recipient</th>
            <th scope="col">Description</th>
            <th scope="col">Created (UTC)</th>
          </tr>
        </thead>
        <tbody>
          ${
            data.payouts.length === 0
              ? html`<tr>
                  <td colspan="6">No payouts match.</td>
                </tr>`
              : html``
          }
          ${data.payouts.map(
            (payout) =>
              html`<tr>
                <td>${payoutLink(payout.id)}</td>
                <td>${statusBadge(payout.status)}${stageBadge(payout.stage)}</td>
                <td class="amount">${amountOf(payout)}</td>
                <td>
                  ${payout.recipient.holder_name}<br /><span class="mono"
                    >${payout.recipient.iban_masked}</span
                  >
                </td>
                <td>${payout.description ?? '—'}</td>
                <td>${payout.created_at}</td>
              </tr>`,
          )}
        </tbody>
      </table>
      <div class="pager">
        ${data.nextHref ? html`<a href="${data.nextHref}" rel="next">Older payouts →</a>` : html`<span>No older payouts.</span>`}
      </div>`,
  );
}

// ----------------------------------------------------------------------------------------------------------- payout

const ACTION_LABELS: Readonly<Record<string, { title: string; hint: string; danger?: boolean }>> = {
  fail: {
    title: 'Fail',
    hint: 'Ask for the payout to fail: the worker closes it at the provider first; a payment already made wins.',
    danger: true,
  },
  succeed: {
    title: 'Complete',
    hint: 'Ask for the payout to complete: the worker confirms with the provider that it paid.',
  },
  retry: { title: 'Retry', hint: 'Hand the payout back to the worker, counters reset.' },
  cancel: {
    title: 'Cancel',
    hint: 'Cancel the payout: nothing has been handed to the provider.',
    danger: true,
  },
};

export interface PayoutPageData {
  payout: PayoutResource;
  history: PayoutHistoryEntry[];
  historyTruncated: boolean;
  diagram: Html;
  deliveries: WebhookDelivery[];
  outcome?: Notice;
}

export function payoutPage(
  layout: Layout & { session: { csrf: string; actor: string } },
  data: PayoutPageData,
): string {
  const { payout } = data;
  const csrf = layout.session.csrf;
  return page(
    { ...layout, title: `Payout ${payout.id.slice(0, 8)}`, section: 'payouts' },
    html`<h1>Payout <span class="mono">${payout.id}</span></h1>
      ${notice(data.outcome)}
      <dl class="facts">
        <dt>Status</dt>
        <dd id="payout-status">${statusBadge(payout.status)}${stageBadge(payout.stage)}</dd>
        <dt>Amount</dt>
        <dd id="payout-amount">${amountOf(payout)}</dd>
        <dt>Recipient</dt>
        <dd>
          ${payout.recipient.holder_name},
          <span class="mono">${payout.recipient.iban_masked}</span
          >${payout.recipient.bic ? html`, BIC <span class="mono">${payout.recipient.bic}</span>` : html``}
        </dd>
        <dt>Description</dt>
        <dd>${payout.description ?? '—'}</dd>
        <dt>Failure</dt>
        <dd>
          ${payout.failure ? html`<code>${payout.failure.code}</code>: ${payout.failure.message}` : '—'}
        </dd>
        <dt>Last error</dt>
        <dd>
          ${payout.last_error ? html`<code>${payout.last_error.code}</code>: ${payout.last_error.message} (${payout.last_error.at})` : '—'}
        </dd>
        <dt>Version</dt>
        <dd>${payout.version}</dd>
        <dt>Created</dt>
        <dd>${payout.created_at}</dd>
        <dt>Updated</dt>
        <dd>${payout.updated_at}</dd>
      </dl>

      <h2 id="actions">Actions</h2>
      ${
        payout.available_actions.length === 0
          ? html`<p>No action is open to you on this payout now.</p>`
          : html`<div class="actions">
              ${payout.available_actions.map((action) => {
                const label = ACTION_LABELS[action] ?? { title: action, hint: '' };
                return html`<form
                  method="post"
                  action="/console/payouts/${payout.id}/actions"
                  aria-labelledby="action-${action}-title"
                >
                  ${csrfField(csrf)}
                  <input type="hidden" name="action" value="${action}" />
                  <input type="hidden" name="version" value="${payout.version}" />
                  <h3 id="action-${action}-title">${label.title}</h3>
                  <p>${label.hint}</p>
                  <div class="field">
                    <label for="reason-${action}">Reason (recorded in the history)</label>
                    <textarea id="reason-${action}" name="reason" required maxlength="500"></textarea>
                  </div>
                  <p>
                    <button type="submit" class="${label.danger ? 'danger' : ''}">
                      ${label.title} payout
                    </button>
                  </p>
                </form>`;
              })}
            </div>`
      }

      <h2 id="diagram">State diagram</h2>
      <p>
        The payout machine as <a href="/api/machine">GET /api/machine</a> serves it; this payout's state is
        marked “● current”.
      </p>
      <div class="diagram-wrap">${data.diagram}</div>

      <h2 id="history">History</h2>
      <ol class="timeline">
        ${data.history.map(
          (entry) =>
            html`<li>
              <div class="what">${entry.event}: ${entry.from ?? '—'} → ${entry.to}</div>
              <div>
                by
                <span class="mono">${entry.actor}</span>
                (${entry.actorRole})${entry.reason ? html` — reason: “${entry.reason}”` : html``}
              </div>
              <div class="meta">
                ${entry.at.toISOString()}${entry.requestId ? html` · request <span class="mono">${entry.requestId}</span>` : html``}
              </div>
            </li>`,
        )}
      </ol>
      ${data.historyTruncated ? html`<p>Older entries follow; the API lists them all (<code>GET /api/payouts/${payout.id}/events</code>).</p>` : html``}

      <h2 id="webhooks">Webhook deliveries</h2>
      ${
        data.deliveries.length === 0
          ? html`<p>No webhook delivery for this payout.</p>`
          : html`<table>
              <thead>
                <tr>
                  <th scope="col">Event</th>
                  <th scope="col">Endpoint</th>
                  <th scope="col">Status</th>
                  <th scope="col">Attempts</th>
                  <th scope="col">Last answer</th>
                  <th scope="col">Created (UTC)</th>
                </tr>
              </thead>
              <tbody>
                ${data.deliveries.map(
                  (delivery) =>
                    html`<tr>
                      <td><code>${delivery.type}</code> (v${delivery.payoutVersion})</td>
                      <td class="mono">${delivery.endpointId.slice(0, 8)}</td>
                      <td><span class="badge">${delivery.status}</span></td>
                      <td>${delivery.attempts}</td>
                      <td>
                        ${delivery.lastStatusCode ?? ''}${delivery.lastError ? html` ${delivery.lastError}` : html``}
                      </td>
                      <td>${delivery.createdAt.toISOString()}</td>
                    </tr>`,
                )}
              </tbody>
            </table>`
      }`,
  );
}

// -------------------------------------------------------------------------------------------------- needs attention

export function attentionPage(layout: Layout, payouts: PayoutResource[], stuckAfterSeconds: number): string {
  return page(
    { ...layout, title: 'Needs attention', section: 'attention' },
    html`<h1>Needs attention</h1>
      <p>
        Payouts waiting for a person (stage <em>needs attention</em>) or unfinished and unchanged for over
        ${stuckAfterSeconds} s, the longest waiting first.
      </p>
      <table>
        <thead>
          <tr>
            <th scope="col">Id</th>
            <th scope="col">Status</th>
            <th scope="col" class="amount">Amount</th>
            <th scope="col">Last error</th>
            <th scope="col">Last change (UTC)</th>
          </tr>
        </thead>
        <tbody>
          ${
            payouts.length === 0
              ? html`<tr>
                  <td colspan="5">Nothing needs attention.</td>
                </tr>`
              : html``
          }
          ${payouts.map(
            (payout) =>
              html`<tr>
                <td>${payoutLink(payout.id)}</td>
                <td>${statusBadge(payout.status)}${stageBadge(payout.stage)}</td>
                <td class="amount">${amountOf(payout)}</td>
                <td>
                  ${payout.last_error ? html`<code>${payout.last_error.code}</code>: ${payout.last_error.message}` : '—'}
                </td>
                <td>${payout.updated_at}</td>
              </tr>`,
          )}
        </tbody>
      </table>`,
  );
}

// ----------------------------------------------------------------------------------------------------- dead letters

export interface DeadLetterFilters {
  reason?: string;
  id?: string;
}

function ageOf(letter: DeadLetter, now: Date): string {
  if (letter.deadLetteredAt === null) return 'unknown';
  const seconds = Math.max(0, Math.round((now.getTime() - Date.parse(letter.deadLetteredAt)) / 1000));
  if (Number.isNaN(seconds)) return 'unknown';
  if (seconds < 120) return `${seconds} s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min`;
  if (seconds < 172_800) return `${Math.round(seconds / 3600)} h`;
  return `${Math.round(seconds / 86_400)} days`;
}

function filterFields(filters: DeadLetterFilters): Html {
  return html`<input type="hidden" name="reason" value="${filters.reason ?? ''}" /><input
      type="hidden"
      name="id"
      value="${filters.id ?? ''}"
    />`;
}

export function deadLettersPage(
  layout: Layout & { session: { csrf: string; actor: string } },
  data: { letters: DeadLetter[]; filters: DeadLetterFilters; hidden: number; now: Date; message?: Notice },
): string {
  const csrf = layout.session.csrf;
  const { filters } = data;
  const filtered = filters.reason !== undefined || filters.id !== undefined;
  return page(
    { ...layout, title: 'Dead letters', section: 'dead-letters' },
    html`<h1>Dead letters</h1>
      ${notice(data.message)}
      <p>
        Messages of your client's payouts that the worker gave up on. Replay moves them back to the work
        queue; drop deletes them for good. Both ask you to confirm how many they act
        on.${data.hidden > 0 ? html` ${data.hidden} dead letter(s) of other clients, or without a payout, are not shown: the <code>make dlq-…</code> tools handle those.` : html``}
      </p>
      <form method="get" action="/console/dead-letters">
        <fieldset>
          <legend>Filter</legend>
          <div class="fields">
            <div class="field">
              <label for="dl-reason">Reason</label
              ><input id="dl-reason" name="reason" value="${filters.reason ?? ''}" spellcheck="false" />
            </div>
            <div class="field">
              <label for="dl-id">Payout or message id</label
              ><input id="dl-id" name="id" value="${filters.id ?? ''}" size="38" spellcheck="false" />
            </div>
            <button type="submit">Apply filter</button> <a href="/console/dead-letters">Clear</a>
          </div>
        </fieldset>
      </form>
      <table>
        <caption class="visually-hidden">
          Dead letters, in queue order
        </caption>
        <thead>
          <tr>
            <th scope="col">Reason</th>
            <th scope="col">Payout</th>
            <th scope="col">Message</th>
            <th scope="col">Age</th>
            <th scope="col">Detail</th>
            <th scope="col">Act on this one</th>
          </tr>
        </thead>
        <tbody>
          ${
            data.letters.length === 0
              ? html`<tr>
                  <td colspan="6">No dead letters${filtered ? ' match' : ''}.</td>
                </tr>`
              : html``
          }
          ${data.letters.map(
            (letter) =>
              html`<tr>
                <td><code>${letter.reason}</code></td>
                <td>${letter.payoutId ? payoutLink(letter.payoutId) : '—'}</td>
                <td class="mono">${letter.messageId ?? '—'}</td>
                <td>${ageOf(letter, data.now)}</td>
                <td>${letter.detail ?? ''}</td>
                <td>
                  <form class="inline" method="post" action="/console/dead-letters/preview">
                    ${csrfField(csrf)}<input
                      type="hidden"
                      name="id"
                      value="${letter.messageId ?? letter.payoutId ?? ''}"
                    /><input type="hidden" name="reason" value="${letter.reason}" />
                    <button
                      type="submit"
                      name="action"
                      value="replay"
                      class="secondary"
                      aria-label="Replay dead letter ${letter.messageId ?? letter.payoutId ?? ''}"
                    >
                      Replay
                    </button>
                    <button
                      type="submit"
                      name="action"
                      value="drop"
                      class="secondary"
                      aria-label="Drop dead letter ${letter.messageId ?? letter.payoutId ?? ''}"
                    >
                      Drop
                    </button>
                  </form>
                </td>
              </tr>`,
          )}
        </tbody>
      </table>
      ${
        data.letters.length > 0
          ? html`<form method="post" action="/console/dead-letters/preview">
              ${csrfField(csrf)}${filterFields(filters)}
              <p>
                ${filtered ? 'Every dead letter this filter shows:' : 'Every dead letter shown:'}
                <button type="submit" name="action" value="replay">Replay all ${data.letters.length}…</button>
                <button type="submit" name="action" value="drop" class="danger">
                  Drop all ${data.letters.length}…
                </button>
              </p>
            </form>`
          : html``
      }`,
  );
}

export function confirmPage(
  layout: Layout & { session: { csrf: string; actor: string } },
  data: { action: 'replay' | 'drop'; filters: DeadLetterFilters; letters: DeadLetter[]; refused: number },
): string {
  const count = data.letters.length;
  const verb = data.action === 'replay' ? 'Replay' : 'Drop';
  return page(
    { ...layout, title: `${verb} dead letters`, section: 'dead-letters' },
    html`<h1>${verb} dead letters</h1>
      <p>
        <strong id="match-count">${count}</strong> dead letter(s)
        match${data.filters.reason ? html` reason <code>${data.filters.reason}</code>` : html``}${data.filters.id ? html` id <code>${data.filters.id}</code>` : html``}.${
          data.refused > 0
            ? html` ${data.refused} more match but are not replayed: their reason never succeeds (the
                <code>make dlq-replay FORCE=1</code> tool can).`
            : html``
        }
      </p>
      <ul>
        ${data.letters.map((letter) => html`<li><code>${letter.reason}</code> — payout ${letter.payoutId ? payoutLink(letter.payoutId) : '—'}, message <span class="mono">${letter.messageId ?? '—'}</span></li>`)}
      </ul>
      ${
        count === 0
          ? html`<p>
              Nothing to ${data.action}. <a href="/console/dead-letters">Back to the dead letters</a>
            </p>`
          : html`<form method="post" action="/console/dead-letters/apply">
              <input type="hidden" name="csrf" value="${layout.session.csrf}" /><input
                type="hidden"
                name="action"
                value="${data.action}"
              />${filterFields(data.filters)}
              <div class="field">
                <label for="confirm"
                  >Type ${count} to ${data.action}
                  ${count === 1 ? 'this dead letter' : `these ${count} dead letters`}</label
                >
                <input id="confirm" name="confirm" inputmode="numeric" autocomplete="off" required size="6" />
              </div>
              <p>
                <button type="submit" class="${data.action === 'drop' ? 'danger' : ''}">
                  ${verb} ${count}
                </button>
                <a href="/console/dead-letters">Cancel</a>
              </p>
            </form>`
      }`,
  );
}

// --------------------------------------------------------------------------------------------------------- messages

export function messagePage(layout: Layout, message: Notice, links: Html = html``): string {
  return page(
    { ...layout, title: message.title },
    html`<h1>${message.title}</h1>
      <div class="notice ${message.tone}" role="${message.tone === 'error' ? 'alert' : 'status'}">
        <p>${message.detail ?? ''}</p>
      </div>
      ${links}`,
  );
}
