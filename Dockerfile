# etcd-backup: the built CLI only, on node:24-slim, as a non-root user.
# Build:  docker build -t etcd-backup .
# Run:    docker run --rm etcd-backup --help
FROM node:24-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

FROM node:24-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force

FROM node:24-slim
ENV NODE_ENV=production
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
