# syntax=docker/dockerfile:1.7
#
# One Dockerfile, one build target per service:
#
#   docker build --target auth-service    -t shop/auth-service .
#   docker build --target product-service -t shop/product-service .
#   docker build --target order-service   -t shop/order-service .
#
# The three targets share the `builder` stage, so BuildKit compiles the workspace once.
# Dependency caching: cargo-chef compiles the dependencies from a recipe (only Cargo.toml /
# Cargo.lock), so a change to the services' code does not rebuild them; BuildKit cache mounts
# keep the crates.io downloads between builds.
#
# The build command below,
#   cargo build --release --locked -p auth-service -p product-service -p order-service
# is checked by ./scripts/validate-deploy.sh and is the one the HA proof runs outside Docker
# (scripts/ha-test.sh), so the binaries it exercises are built the way the images' are.
# (`-p`, not `--bin`: the root package `shop` is the workspace's default member.)

# Must match rust-toolchain.toml (checked by scripts/validate-deploy.sh).
ARG RUST_VERSION=1.95.0
# The runtime image's Debian release must match the builder's (glibc).
ARG DEBIAN_RELEASE=trixie
ARG DISTROLESS_DEBIAN=debian13

FROM rust:${RUST_VERSION}-slim-${DEBIAN_RELEASE} AS chef
ARG RUST_VERSION
# The image's toolchain, even though rust-toolchain.toml is in the context: no rustup download
# of extra components (rustfmt, clippy) during an image build.
ENV RUSTUP_TOOLCHAIN=${RUST_VERSION} \
    CARGO_TERM_COLOR=never
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    cargo install cargo-chef --locked --version ~0.1
WORKDIR /app

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
COPY --from=planner /app/recipe.json recipe.json
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    cargo chef cook --release --locked --recipe-path recipe.json \
      -p auth-service -p product-service -p order-service
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    cargo build --release --locked -p auth-service -p product-service -p order-service

# Health probe: the distroless runtime has no shell and no curl. BusyBox's static musl build
# (about 1 MB, no libraries) provides `wget`, which HEALTHCHECK runs in exec form.
FROM busybox:1.37-musl AS probe

# glibc + libgcc only (the services use rustls, no OpenSSL), CA certificates, no shell, no
# package manager, user `nonroot` (65532).
FROM gcr.io/distroless/cc-${DISTROLESS_DEBIAN}:nonroot AS runtime
COPY --from=probe /bin/busybox /usr/local/bin/busybox
USER 65532:65532
ENV LOG_FORMAT=json \
    RUST_LOG=info

FROM runtime AS auth-service
COPY --from=builder /app/target/release/auth-service /usr/local/bin/auth-service
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["/usr/local/bin/busybox", "wget", "-q", "-T", "2", "-O", "/dev/null", "http://127.0.0.1:8000/health/ready"]
ENTRYPOINT ["/usr/local/bin/auth-service"]

FROM runtime AS product-service
COPY --from=builder /app/target/release/product-service /usr/local/bin/product-service
EXPOSE 8001
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["/usr/local/bin/busybox", "wget", "-q", "-T", "2", "-O", "/dev/null", "http://127.0.0.1:8001/health/ready"]
ENTRYPOINT ["/usr/local/bin/product-service"]

FROM runtime AS order-service
COPY --from=builder /app/target/release/order-service /usr/local/bin/order-service
EXPOSE 8002
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["/usr/local/bin/busybox", "wget", "-q", "-T", "2", "-O", "/dev/null", "http://127.0.0.1:8002/health/ready"]
ENTRYPOINT ["/usr/local/bin/order-service"]
