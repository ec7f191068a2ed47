# syntax=docker/dockerfile:1
# cdr-purpose-filter: a multi-stage build. The runtime image holds the binary, the
# shared libraries librdkafka links (OpenSSL, zlib) and CA certificates; it runs as an
# unprivileged user and needs no writable filesystem.
#
#   docker build -t cdr-purpose-filter:0.1.0 .
#   docker run --rm cdr-purpose-filter:0.1.0 policy show

FROM rust:1-bookworm AS build
# librdkafka is built from source by rdkafka-sys: a C toolchain, make, OpenSSL and zlib.
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential pkg-config libssl-dev zlib1g-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# Cache mounts keep the registry and the build directory between builds (BuildKit).
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin cdr-purpose-filter \
 && install -D -s target/release/cdr-purpose-filter /out/cdr-purpose-filter \
 && /out/cdr-purpose-filter --version \
 && sed 's/^listen = "127.0.0.1:9898"/listen = "0.0.0.0:9898"/' deploy/config.example.toml >/out/filter.toml \
 && grep -q '^listen = "0.0.0.0:9898"' /out/filter.toml \
 && /out/cdr-purpose-filter config check --config /out/filter.toml >/dev/null

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libssl3 zlib1g \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/cdr-purpose-filter /usr/local/bin/cdr-purpose-filter
# The example configuration, listening on all interfaces: a container's probes and
# scrapes come from outside it (the example's loopback default would refuse them).
COPY --from=build /out/filter.toml /etc/cdr-purpose-filter/filter.toml
# A numeric user (no entry in /etc/passwd needed): Kubernetes' runAsNonRoot can check it.
USER 10001:10001
EXPOSE 9898
ENTRYPOINT ["/usr/local/bin/cdr-purpose-filter"]
CMD ["run", "--config", "/etc/cdr-purpose-filter/filter.toml"]
