# etcd-backup's container image: the standalone binary (a Node.js 24 single-executable application) and the few
# files it needs on an empty base: glibc's libraries, CA certificates, /etc/passwd with user 65532, /tmp.
# No shell, no package manager, no node_modules.
# It is the image `npm run image` builds without Docker (scripts/build-image.ts): the same filesystem, made by
# the same scripts/image-rootfs.sh, and the same user, entrypoint, command and environment.
# Checked (2026-11-30) with podman build, against a stand-in for node:24-bookworm-slim made with debootstrap and
# npm's Node 24 since no registry was reachable: the same 12 files, modes, owners and config as npm run image.
# Build:  docker build -t etcd-backup .            (arm64: docker buildx build --platform linux/arm64 .)
# Run:    docker run --rm etcd-backup --help
FROM node:24-bookworm-slim AS build
# ca-certificates: the image's CA bundle; binutils: strip, which drops the debug information of Node's binary.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates binutils \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY package.json package-lock.json ./
# npm install with the committed lock file, not npm ci, as scripts/install-deps.sh does: a lock written where the
# registry served only this platform's optional packages (Biome's, esbuild's binaries) makes npm ci refuse it.
RUN npm install --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY scripts/build-binary.ts scripts/image-rootfs.sh ./scripts/
# Built on the target platform (under emulation for a foreign one), so the binary gets V8's code cache.
ARG TARGETARCH=amd64
RUN npm run dist -- --arch "${TARGETARCH}" \
    && sh scripts/image-rootfs.sh "dist-bin/etcd-backup-linux-${TARGETARCH}" /rootfs

FROM scratch
COPY --from=build /rootfs/ /
LABEL org.opencontainers.image.title="etcd-backup" \
      org.opencontainers.image.licenses="Apache-2.0"
# No NODE_OPTIONS: the binary carries etcd-backup's V8 options itself (src/cli/v8-flags.ts, the SEA execArgv).
ENV PATH=/usr/local/bin
WORKDIR /
# 65532: a fixed unprivileged id that matches the manifests' runAsUser.
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/etcd-backup"]
CMD ["save"]
