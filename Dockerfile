# syntax=docker/dockerfile:1
#
# sessiond container image: one statically linked binary on a distroless base (no shell, no
# package manager), running as uid 65532.
#
#   docker build -t sessiond .
#   docker run -d --name sessiond -p 8470:8470 -v sessiond-data:/var/lib/sessiond sessiond
#   docker logs sessiond        # the first start prints the administrator's password
#
# docs/deploy/docker.md explains configuration, secrets, proxies and upgrades.

# The toolchain to build with: any release at or above the workspace's rust-version.
ARG RUST_VERSION=1

FROM docker.io/library/rust:${RUST_VERSION}-bookworm AS build
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
WORKDIR /src
COPY . .
# crt-static links glibc, libgcc and mimalloc's C code into the executable, so it needs no
# library at run time; the explicit --target keeps the flag away from build scripts and proc
# macros. The cache mounts keep downloaded crates and compiled dependencies between builds.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    set -eux; \
    target="$(rustc -vV | sed -n 's/^host: //p')"; \
    RUSTFLAGS="-C target-feature=+crt-static" \
        cargo build --locked --release --target "$target" -p sessiond; \
    bin="target/$target/release/sessiond"; \
    file -b "$bin" | grep -E 'static(-pie)? linked'; \
    "$bin" --version; \
    install -D -m 0755 "$bin" /out/usr/local/bin/sessiond; \
    install -d -m 0700 /out/var/lib/sessiond

# distroless/static: CA certificates (for rediss:// with a public CA), /etc/passwd with the
# nonroot user 65532, tzdata; nothing else.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/usr/local/bin/sessiond /usr/local/bin/sessiond
# The data directory belongs to the service user; a new named volume mounted here copies it,
# ownership and mode 0700 included.
COPY --from=build --chown=65532:65532 /out/var/lib/sessiond /var/lib/sessiond

# Listen on every address inside the container (the port is published by `-p`), keep the data
# in the volume. A sessiond.yml mounted into /etc/sessiond (the working directory) is read
# without further flags; environment variables SESSIOND__… override it.
ENV SESSIOND__DATA_DIR=/var/lib/sessiond \
    SESSIOND__SERVER__LISTEN=0.0.0.0:8470
WORKDIR /etc/sessiond
USER 65532:65532
VOLUME ["/var/lib/sessiond"]
EXPOSE 8470

# The binary asks its own /healthz on the configured listen address; no shell or curl needed.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/sessiond", "healthcheck", "--timeout", "3s"]

# SIGTERM (docker stop) lets requests in flight finish before sessiond exits.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/sessiond"]
CMD ["serve"]

LABEL org.opencontainers.image.title="sessiond" \
      org.opencontainers.image.description="Session server for web applications: cookies, forward auth, session API" \
      org.opencontainers.image.source="https://github.com/sessiond/sessiond" \
      org.opencontainers.image.licenses="Apache-2.0"
