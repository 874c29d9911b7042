/**
 * The console's rendering without a server: `html` escapes every value it is given, and the state diagram is drawn
 * from the machine definition — every transition of the definition is an arrow, and the current status and stage
 * are marked in words as well as drawn thicker.
 */
import { expect } from 'chai';
import { html, trusted } from '../../src/console/html.js';
import { machineEdges, stateDiagram } from '../../src/console/diagram.js';
import { matchesFilter } from '../../src/dlq/dead-letters.js';
import type { DeadLetter } from '../../src/dlq/dead-letters.js';
import { machineDefinition } from '../../src/machines/definition.js';
import { PAYOUT_EVENT_TYPES } from '../../src/machines/payout-lifecycle.js';

describe('console: html', () => {
  it('escapes every interpolated value, nested markup excepted', () => {
    const name = `<script>alert("x")</script>' & \``;
    const page = html`<p title="${name}">${name} ${[html`<b>${name}</b>`, 1, null, undefined, false]}</p>`;
    expect(page.text).to.equal(
      '<p title="&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&#39; &amp; &#96;">' +
        '&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&#39; &amp; &#96; ' +
        '<b>&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&#39; &amp; &#96;</b>1</p>',
    );
    expect(html`${trusted('<br>')}`.text).to.equal('<br>');
    expect(html`${{ a: '<' }}`.text).to.equal('{&quot;a&quot;:&quot;&lt;&quot;}');
  });
});

describe('console: state diagram', () => {
  const definition = machineDefinition();

  it('draws an arrow for every event of the definition that changes state', () => {
    const edges = machineEdges(definition);
    const drawn = new Set(edges.flatMap((edge) => edge.events));
    // Events that only ever stay in their state (REDRIVE with re-drives left, a request recorded) have arrows
    // where they do change state; every event type appears at least once, except those that never move.
    const moving = PAYOUT_EVENT_TYPES.filter((event) => drawn.has(event));
    expect(moving.length).to.be.greaterThan(10);
    expect(edges).to.deep.include({ from: 'created.queued', to: 'processing.submitting', events: ['START'] });
    expect(edges).to.deep.include({ from: 'created', to: 'cancelled', events: ['CANCEL'] });
    expect(edges).to.deep.include({ from: 'processing', to: 'completed', events: ['PROVIDER_SUCCEEDED'] });
    expect(edges).to.deep.include({
      from: 'processing.needs_attention',
      to: 'processing.voiding',
      events: ['FAIL'],
    });
    const svg = stateDiagram(definition, { status: 'processing', stage: 'voiding' }).text;
    for (const edge of edges) for (const event of edge.events) expect(svg).to.include(event);
    for (const state of [
      'created',
      'created.queued',
      'processing.confirming',
      'completed',
      'failed',
      'cancelled',
    ]) {
      expect(svg).to.include(`data-state="${state}"`);
    }
  });

  it('marks the current status and stage with a thicker border and in words', () => {
    const svg = stateDiagram(definition, { status: 'processing', stage: 'needs_attention' }).text;
    const current = [
      ...svg.matchAll(/<g\s+class="state current"\s+data-state="([^"]+)"\s+aria-current="true"/g),
    ].map((match) => match[1]);
    expect(current).to.deep.equal(['processing', 'processing.needs_attention']);
    expect(svg.match(/● current<\/text/g)).to.have.length(2);
    expect(svg).to.include('stroke-width="4"');
    expect(svg).to.match(/This\s+payout\s+is\s+in\s+processing › needs_attention/);
    const final = stateDiagram(definition, { status: 'failed', stage: null }).text;
    expect([...final.matchAll(/aria-current="true"/g)]).to.have.length(1);
    expect(final).to.include('failed ● current');
  });
});

describe('DLQ filter: payouts of one client', () => {
  const letter = (payoutId: string | null): DeadLetter => ({
    messageId: 'm',
    payoutId,
    requestId: null,
    reason: 'delivery_limit',
    detail: null,
    deadLetteredAt: null,
    contentType: null,
    bodyBytes: 0,
    bodyEncoding: 'utf8',
    body: '',
  });

  it('matches only dead letters of the given payouts; a letter without a payout id never', () => {
    const payoutIds = new Set(['p1']);
    expect(matchesFilter(letter('p1'), { payoutIds })).to.equal(true);
    expect(matchesFilter(letter('p2'), { payoutIds })).to.equal(false);
    expect(matchesFilter(letter(null), { payoutIds })).to.equal(false);
    expect(matchesFilter(letter('p2'), {})).to.equal(true);
  });
});
