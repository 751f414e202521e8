# zen-watcher's container image. Built with the command the project's CI builds with
# (`cargo build --release --locked -p zen-watcher`, `.ci/run`), run on a distroless base as a
# non-root user. The data directory `/data` is a volume, so the root filesystem may be read-only.
# It listens on all the container's addresses, so it wants token files (ZEN_*_TOKEN_FILE, mounted
# secrets) or `--insecure-no-auth`; it refuses to start with neither.
# No HEALTHCHECK: Kubernetes probes `/healthz` and `/readyz` (deploy/kubernetes/), and a
# distroless image has no shell or curl to run one with. See docs/install.md.
#checkov:skip=CKV_DOCKER_2:probes belong to the orchestrator (Kubernetes' on /healthz and /readyz)

FROM rust:1.95-bookworm AS build
# `--version` names the commit: `docker build --build-arg ZEN_COMMIT=$(git rev-parse --short=12 HEAD) .`
# (`.git` is not sent to the build).
ARG ZEN_COMMIT=unknown
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p zen-watcher \
    && install -D target/release/zen-watcher /out/zen-watcher \
    && install -d -m 0700 /out/data

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/zen-watcher /usr/local/bin/zen-watcher
COPY --from=build --chown=65532:65532 /out/data /data
ENV ZEN_DATA_DIR=/data \
    ZEN_LISTEN=0.0.0.0:8080 \
    ZEN_LOG_FORMAT=json
VOLUME ["/data"]
EXPOSE 8080
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/zen-watcher"]
