# syntax=docker/dockerfile:1
#
# One image, two binaries:
#   /usr/local/bin/ferrocache-operator   the entrypoint (the Helm chart's Deployment)
#   /usr/local/bin/ferrocache-node       run by RedisCluster pods through `command`
#
#   docker buildx build -t ferrocache:dev .
#
# Built on glibc (the node links jemalloc through tikv-jemallocator) and run on
# distroless cc (glibc, libgcc, no shell) as the non-root user 65532. The
# builder is Debian bookworm, the same glibc (2.36) as distroless cc-debian12.
# Dependencies are compiled in a layer of their own (cargo-chef), so a change
# of the workspace's sources rebuilds only the workspace crates.

ARG RUST_IMAGE=rust:1-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot

FROM ${RUST_IMAGE} AS chef
ARG CARGO_CHEF_VERSION=0.1.77
RUN cargo install cargo-chef --locked --version "${CARGO_CHEF_VERSION}"
WORKDIR /build

# The recipe: every manifest and Cargo.lock of the workspace, sources stubbed.
# It changes only when dependencies do.
FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
COPY --from=planner /build/recipe.json recipe.json
# The build flags (tokio_unstable, see .cargo/config.toml), so the cooked
# dependencies match the final build's.
COPY .cargo .cargo
RUN cargo chef cook --release --locked --recipe-path recipe.json \
        -p ferrocache-operator -p ferrocache-node --bins
COPY . .
RUN cargo build --release --locked -p ferrocache-operator -p ferrocache-node --bins \
 && mkdir -p /out \
 && cp target/release/ferrocache-operator target/release/ferrocache-node /out/

FROM ${RUNTIME_IMAGE}
LABEL org.opencontainers.image.title="ferrocache" \
      org.opencontainers.image.description="ferrocache operator and Redis-compatible cache node" \
      org.opencontainers.image.source="https://github.com/ferrocache/ferrocache" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=builder /out/ferrocache-operator /out/ferrocache-node /usr/local/bin/
USER 65532:65532
# The operator's /metrics, /healthz and /readyz; node pods serve RESP on 6379.
EXPOSE 8080 6379
ENTRYPOINT ["/usr/local/bin/ferrocache-operator"]
