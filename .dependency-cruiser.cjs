/**
 * The folder layering of src/, checked by `make deps-check` (part of `make test`).
 *
 * Lower layers never reach up:
 *   machines  <-  domain  <-  persistence  <-  messaging, adapters  <-  http, consumers, relay, sweeper, dlq
 *   <-  console  <-  roles  <-  context.ts, main.ts
 * console (the operator console's pages) stands on http (its request context, cursors, problem statuses) and dlq
 * (the dead-letter tools); the roles hand it to the API app (`ApiDeps.console`), so http never imports it.
 * domain may also use the platform files metrics.ts and logger.ts. Type-only imports count like any other:
 * a layer that names another layer's types depends on it.
 *
 * @type {import('dependency-cruiser').IConfiguration}
 */
const ENTRY_POINTS = 'src/(main|context)\\.ts$';
const EDGES = 'src/(http|consumers|relay|sweeper|dlq)/';
const NPM = ['npm', 'npm-dev', 'npm-optional', 'npm-peer', 'npm-bundled', 'npm-no-pkg', 'npm-unknown'];

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'A module must not depend on itself through other modules.',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: 'machines-only-machines',
      severity: 'error',
      comment: 'src/machines imports only src/machines and npm packages (not even node: built-ins).',
      from: { path: '^src/machines/' },
      to: { pathNot: '^src/machines/', dependencyTypesNot: NPM },
    },
    {
      name: 'domain-only-domain-machines-platform',
      severity: 'error',
      comment:
        'src/domain imports only src/domain, src/machines, src/metrics.ts, src/logger.ts (and npm packages): ' +
        'not persistence, http, consumers, messaging, adapters, relay, sweeper, dlq, roles, main, context, config.',
      from: { path: '^src/domain/' },
      to: { path: '^src/', pathNot: ['^src/(domain|machines)/', '^src/(metrics|logger)\\.ts$'] },
    },
    {
      name: 'persistence-not-above',
      severity: 'error',
      comment:
        'src/persistence must not import http, consumers, messaging, adapters, relay, sweeper, dlq, roles, main, context.',
      from: { path: '^src/persistence/' },
      to: {
        path: [
          `^src/(http|consumers|messaging|adapters|relay|sweeper|dlq|console|roles)/`,
          `^${ENTRY_POINTS}`,
        ],
      },
    },
    {
      name: 'messaging-adapters-not-above',
      severity: 'error',
      comment:
        'src/messaging and src/adapters must not import http, consumers, relay, sweeper, dlq, roles, main, context.',
      from: { path: '^src/(messaging|adapters)/' },
      to: { path: [`^${EDGES}`, '^src/(console|roles)/', `^${ENTRY_POINTS}`] },
    },
    {
      name: 'edges-not-each-other',
      severity: 'error',
      comment: 'None of src/http, consumers, relay, sweeper, dlq imports another of the five.',
      from: { path: `^${EDGES}` },
      to: { path: `^${EDGES}`, pathNot: '^src/$1/' },
    },
    {
      name: 'edges-not-roles-entry-points',
      severity: 'error',
      comment:
        'src/http, consumers, relay, sweeper, dlq must not import src/console, src/roles, src/main.ts, src/context.ts.',
      from: { path: `^${EDGES}` },
      to: { path: ['^src/(console|roles)/', `^${ENTRY_POINTS}`] },
    },
    {
      name: 'console-not-roles-entry-points',
      severity: 'error',
      comment:
        'src/console must not import src/roles, src/main.ts, src/context.ts (the roles hand it to the API).',
      from: { path: '^src/console/' },
      to: { path: ['^src/roles/', `^${ENTRY_POINTS}`] },
    },
    {
      name: 'roles-not-main',
      severity: 'error',
      comment: 'src/roles must not import src/main.ts.',
      from: { path: '^src/roles/' },
      to: { path: '^src/main\\.ts$' },
    },
    {
      name: 'src-not-test-bench-scripts',
      severity: 'error',
      comment: 'Nothing under src imports from test/, bench/ or scripts/.',
      from: { path: '^src/' },
      to: { path: '^(test|bench|scripts)/' },
    },
  ],
  options: {
    // Reached from src only to be reported (rule src-not-test-bench-scripts), not cruised themselves.
    doNotFollow: { path: ['^node_modules/', '^(test|bench|scripts)/'] },
    // Any test placed under src.
    exclude: { path: ['^src/.*\\.(test|spec)\\.ts$'] },
    // `import type` counts: see the top of this file.
    tsPreCompilationDeps: true,
    // `./x.js` in a .ts file resolves to ./x.ts through the compiler's own resolution (module nodenext).
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      mainFields: ['module', 'main', 'types', 'typings'],
    },
    skipAnalysisNotInRules: true,
  },
};
