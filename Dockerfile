# syntax=docker/dockerfile:1
# One image for every role: `docker run payouts-service <role>` with role api (default), worker, relay,
# sweeper, migrate, dlq-list, dlq-replay, key ... Configuration comes from the environment (src/config.ts).

ARG NODE_IMAGE=node:24-bookworm-slim

# Build: dev dependencies and the TypeScript compiler; only dist/ leaves this stage. Redoc is a dev dependency:
# its standalone bundle (the one file the docs page loads) is copied into dist/assets/redoc/ here.
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json knexfile.ts ./
COPY src ./src
RUN npm run build

# Production dependencies only, installed apart so the runtime image carries no compiler or test tooling.
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8000 \
    METRICS_PORT=9100
WORKDIR /app
# The files stay owned by root, so the `node` user the process runs as cannot rewrite its own code.
# package.json is needed at run time: its "type": "module" makes dist/ an ES module tree.
COPY --from=deps /app/node_modules ./node_modules
COPY package.json openapi.yaml ./
COPY --from=build /app/dist ./dist
USER node
EXPOSE 8000 9100
# The slim image has no curl. HEALTH_PORT/HEALTH_PATH let one image serve every role: the API answers on
# PORT, the worker, relay and sweeper on METRICS_PORT (docker-compose.yml sets them per service).
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "const e=process.env;fetch('http://127.0.0.1:'+(e.HEALTH_PORT||e.PORT||8000)+(e.HEALTH_PATH||'/healthz'),{signal:AbortSignal.timeout(2500)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# Node is PID 1: the app handles SIGTERM itself (graceful shutdown); compose adds `init: true` for zombies.
ENTRYPOINT ["node", "dist/src/main.js"]
CMD ["api"]
