# The deployments worker with its prebuilt workflow bundle (npm run build
# writes dist/src/*.js and dist/workflow-bundle.js; the worker loads the bundle
# when it is there, so it starts without webpack).
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
# git (+ ssh) for the release tag and changelog pushes; pg_dump/pg_restore/psql
# for backups, restores and migrations (Debian 12 ships client 15: it must not
# be older than the server, see database.clientBin).
RUN apt-get update \
  && apt-get install -y --no-install-recommends git openssh-client postgresql-client ca-certificates \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /app
ENV NODE_ENV=production DEPLOY_CONFIG=/app/deploy.config.yaml
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json deploy.config.yaml ./
COPY bin ./bin
USER node
CMD ["node", "dist/src/worker.js"]
