# syntax=docker/dockerfile:1
# trustgate container image.
#   docker build -t ghcr.io/trustgate/trustgate:0.1.0 .
# Build stage: the README's release build. Runtime: distroless with glibc and CA certificates,
# no shell, non-root (UID/GID 65532, as the Helm chart's securityContext expects).

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
# Cache mounts (BuildKit) keep the crate registry and target/ between builds; the binary is
# copied out of the cached target/ because cache mounts are not part of the image.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --locked --release \
    && install -D -m 0755 target/release/trustgate /out/trustgate

FROM gcr.io/distroless/cc-debian12:nonroot
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="trustgate" \
      org.opencontainers.image.description="Kubernetes admission controller enforcing Docker Content Trust (Notary v1)" \
      org.opencontainers.image.source="https://github.com/trustgate/trustgate" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}"
COPY --from=build /out/trustgate /trustgate
USER 65532:65532
# 8443: webhook (HTTPS, POST /validate); 8080: admin (/healthz, /readyz, /metrics).
EXPOSE 8443 8080
ENTRYPOINT ["/trustgate"]
CMD ["serve"]
