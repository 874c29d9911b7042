/**
 * The console's one stylesheet, served as `/console/console.css` from the compiled code (no CDN, no copy step,
 * no inline style: the CSP allows only the app's own files). Relative units throughout, so the pages reflow at
 * 200 % zoom; focus is always visible; a status is a badge with its name in words, never a colour alone.
 */
export const CONSOLE_CSS = `
:root {
  --ink: #1b1f24;
  --muted: #555d66;
  --line: #c9d1d9;
  --paper: #ffffff;
  --panel: #f4f6f8;
  --accent: #0b57d0;
  --focus: #b35c00;
  --bad: #a4000f;
  --good: #116329;
  --warn: #7a4b00;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  font-size: 100%;
  line-height: 1.5;
  color: var(--ink);
  background: var(--paper);
}
body { margin: 0; }
a { color: var(--accent); }
a:focus-visible, button:focus-visible, input:focus-visible, select:focus-visible, textarea:focus-visible,
summary:focus-visible {
  outline: 0.2rem solid var(--focus);
  outline-offset: 0.15rem;
}
.skip-link { position: absolute; left: -999rem; top: 0; }
.skip-link:focus { left: 1rem; top: 1rem; background: var(--paper); padding: 0.5rem 1rem; z-index: 10; }
header.top {
  display: flex; flex-wrap: wrap; gap: 1rem; align-items: center; justify-content: space-between;
  padding: 0.75rem 1.5rem; border-bottom: 0.0625rem solid var(--line); background: var(--panel);
}
header.top .brand { font-weight: 700; font-size: 1.1rem; }
nav.main ul { display: flex; flex-wrap: wrap; gap: 1rem; list-style: none; margin: 0; padding: 0; }
nav.main a[aria-current="page"] { font-weight: 700; text-decoration: underline 0.15rem; }
main { padding: 1rem 1.5rem 3rem; max-width: 90rem; }
h1 { font-size: 1.6rem; margin: 0.5rem 0 1rem; }
h2 { font-size: 1.25rem; margin: 2rem 0 0.75rem; }
form.inline { display: inline; }
fieldset { border: 0.0625rem solid var(--line); border-radius: 0.4rem; padding: 0.75rem 1rem; margin: 0 0 1rem; }
legend { font-weight: 600; padding: 0 0.25rem; }
.fields { display: flex; flex-wrap: wrap; gap: 0.75rem 1.25rem; align-items: flex-end; }
.field { display: flex; flex-direction: column; gap: 0.2rem; }
label { font-weight: 600; font-size: 0.95rem; }
input, select, textarea, button {
  font: inherit; padding: 0.35rem 0.5rem; border: 0.0625rem solid #6e7781; border-radius: 0.3rem;
}
textarea { min-width: 20rem; min-height: 4rem; }
button { background: var(--accent); color: #fff; border-color: var(--accent); cursor: pointer; font-weight: 600; }
button.secondary { background: var(--paper); color: var(--accent); }
button.danger { background: var(--bad); border-color: var(--bad); }
table { border-collapse: collapse; width: 100%; margin: 0.5rem 0 1rem; }
th, td { text-align: left; padding: 0.4rem 0.6rem; border-bottom: 0.0625rem solid var(--line); vertical-align: top; }
th { background: var(--panel); }
td.amount, th.amount { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 0.95em; }
.badge {
  display: inline-block; padding: 0 0.45rem; border-radius: 0.3rem; border: 0.0625rem solid currentColor;
  font-size: 0.9rem; font-weight: 600; white-space: nowrap;
}
.badge.status-completed { color: var(--good); }
.badge.status-failed, .badge.status-cancelled { color: var(--bad); }
.badge.status-processing, .badge.status-created { color: var(--accent); }
.badge.stage-needs_attention { color: var(--warn); }
.notice { border: 0.125rem solid var(--line); border-left-width: 0.5rem; padding: 0.6rem 1rem; margin: 0 0 1rem; border-radius: 0.3rem; }
.notice strong { display: block; }
.notice.ok { border-color: var(--good); }
.notice.error { border-color: var(--bad); }
.notice.info { border-color: var(--accent); }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 0.3rem 1.25rem; margin: 0 0 1rem; }
dl.facts dt { font-weight: 600; }
dl.facts dd { margin: 0; }
ol.timeline { list-style: none; padding: 0; margin: 0; border-left: 0.2rem solid var(--line); }
ol.timeline li { position: relative; padding: 0 0 1rem 1.25rem; }
ol.timeline li::before {
  content: ""; position: absolute; left: -0.5rem; top: 0.4rem; width: 0.8rem; height: 0.8rem;
  border-radius: 50%; background: var(--paper); border: 0.2rem solid var(--accent);
}
.timeline .what { font-weight: 600; }
.timeline .meta { color: var(--muted); font-size: 0.9rem; }
.diagram-wrap { overflow-x: auto; border: 0.0625rem solid var(--line); border-radius: 0.4rem; padding: 0.5rem; }
svg.diagram { max-width: 100%; height: auto; font-family: inherit; }
svg.diagram .status-name { font-size: 15px; }
svg.diagram .stage-name { font-size: 13px; }
svg.diagram .edge-label {
  font-size: 11px; fill: #333; paint-order: stroke; stroke: #fff; stroke-width: 4px; stroke-linejoin: round;
}
.actions { display: grid; grid-template-columns: repeat(auto-fit, minmax(18rem, 1fr)); gap: 1rem; }
.actions form { border: 0.0625rem solid var(--line); border-radius: 0.4rem; padding: 0.75rem 1rem; }
.actions form h3 { margin: 0 0 0.5rem; font-size: 1.05rem; }
.pager { display: flex; gap: 1rem; margin: 1rem 0; }
.sign-in { max-width: 32rem; margin: 3rem auto; padding: 1.5rem; border: 0.0625rem solid var(--line); border-radius: 0.5rem; }
.sign-in input { width: 100%; box-sizing: border-box; }
.visually-hidden {
  position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap;
}
@media (max-width: 40rem) {
  main { padding: 0.75rem; }
  table { display: block; overflow-x: auto; }
}
`;
