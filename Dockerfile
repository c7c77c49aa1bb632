# syntax=docker/dockerfile:1
# The rowguard server: the release binary on a slim base, as a non-root user.
#   docker build -t rowguard .
# docker-compose.yml runs it (migrations as the owner, the server as its login roles).
# What was and was not checked on a machine without a Docker engine: README,
# "Container image".

FROM rust:1.92-bookworm AS builder
WORKDIR /build

# The dependencies, compiled in a layer of their own: it is rebuilt only when
# Cargo.toml or Cargo.lock change, not on every change of the source. The stand-in
# crate is what cargo needs to build them; the bench/ examples are not built.
COPY Cargo.toml Cargo.lock ./
RUN mkdir src \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && cargo build --release --locked \
    && rm -rf src

COPY build.rs clippy.toml ./
COPY src src
COPY sql sql
COPY policies policies
COPY templates templates
# COPY keeps the files' times, which can be older than the stand-in's build: touch,
# so that cargo rebuilds the crate itself.
RUN touch src/main.rs src/lib.rs \
    && cargo build --release --locked \
    && cp target/release/rowguard /usr/local/bin/rowguard

FROM debian:bookworm-slim
# curl: the HEALTHCHECK's client. TLS (SMTP, Daraja) is rustls with compiled-in roots:
# no OpenSSL or CA bundle is needed.
RUN apt-get update \
    && apt-get install -y --no-install-recommends curl=7.88.* \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin rowguard
COPY --from=builder /usr/local/bin/rowguard /usr/local/bin/rowguard
USER 10001:10001

# Inside a container the server must listen beyond loopback; JSON logs for collectors.
ENV ROWGUARD_BIND=0.0.0.0:8080 \
    ROWGUARD_LOG_FORMAT=json
EXPOSE 8080
# Liveness (the process answers), not readiness: /health/db is the database's. The
# port is ROWGUARD_BIND's default above; a container that changes it changes this too.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["curl", "--fail", "--silent", "--show-error", "--max-time", "2", "http://127.0.0.1:8080/health"]
ENTRYPOINT ["rowguard"]
CMD ["serve"]
