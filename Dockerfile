# etcd-backup: the built CLI only, on node:24-slim, as a non-root user.
# Build:  docker build -t etcd-backup .
# Run:    docker run --rm etcd-backup --help
FROM node:24-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
# npm install with the committed lock file, not npm ci: the lock lacks other platforms' optional Biome packages
# (the registry mirror it was made with does not serve them) and npm ci refuses such a lock.
RUN npm install --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

FROM node:24-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm install --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

FROM node:24-slim
ENV NODE_ENV=production
# A 2 MiB young generation: snapshot chunks are freed by frequent scavenges instead of piling up until an old-space
# GC, which lowers save's peak RSS by 20-40 MiB (bench/RESULTS.md) at the same speed.
ENV NODE_OPTIONS="--max-semi-space-size=2"
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY package.json ./
# 65532: a fixed unprivileged id that matches the manifests' runAsUser; no shell login, no home writes needed.
RUN groupadd --system --gid 65532 etcd-backup && \
    useradd --system --uid 65532 --gid 65532 --home-dir /nonexistent --shell /usr/sbin/nologin etcd-backup
USER 65532:65532
ENTRYPOINT ["node", "/app/dist/cli/main.js"]
CMD ["save"]
