# The deployments worker with its prebuilt workflow bundle (npm run build
# writes dist/src/*.js and dist/workflow-bundle.js; the worker loads the bundle
# when it is there, so it starts without webpack).
#
#   docker build --build-arg GIT_COMMIT=$(git rev-parse HEAD) -t deploy-pipelines-worker .
#
# GIT_COMMIT gives the image its build id, <package version>+<commit>, which a
# worker run with TEMPORAL_DEPLOYMENT_NAME registers as its version (worker
# versioning, docs/operations.md); TEMPORAL_BUILD_ID at run time overrides it.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
# git (+ ssh) for the release tag and changelog pushes; pg_dump/pg_restore/psql
# for backups, restores and migrations (Debian 12 ships client 15: it must not
# be older than the server, see database.clientBin); zstd compresses backups.
RUN apt-get update \
  && apt-get install -y --no-install-recommends git openssh-client postgresql-client zstd ca-certificates \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /app
ENV NODE_ENV=production DEPLOY_CONFIG=/app/deploy.config.yaml
# A bounded heap and two malloc arenas keep a worker's memory near what it uses (src/worker-memory.ts);
# a NODE_OPTIONS given to the container replaces these flags, so give the heap limit with it.
ENV MALLOC_ARENA_MAX=2 NODE_OPTIONS="--max-old-space-size=384 --max-semi-space-size=2"
# The commit built: the worker's build id is <package version>+<commit> (src/worker-versioning.ts).
ARG GIT_COMMIT=
ENV DEPLOY_GIT_COMMIT=${GIT_COMMIT}
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json deploy.config.yaml ./
COPY bin ./bin
USER node
# The I/O worker (temporal.ioTaskQueue) runs from the same image: node dist/src/io-worker.js
# /metrics for Prometheus; set DEPLOY_METRICS_ADDRESS=0.0.0.0:9464 to reach it from outside the container.
EXPOSE 9464
CMD ["node", "dist/src/worker.js"]
