# syntax=docker/dockerfile:1
# Multi-stage build: compile with the pinned toolchain, run on a slim Debian as a non-root user.

FROM rust:1.95-bookworm AS build
WORKDIR /src
# Build the dependencies first, from the manifests alone, so code changes reuse this layer.
COPY Cargo.toml Cargo.lock ./
COPY migrations/Cargo.toml migrations/Cargo.toml
RUN mkdir -p src migrations/src tests/api tests/faults benches \
 && echo 'fn main() {}' > src/main.rs && touch src/lib.rs migrations/src/lib.rs tests/api/main.rs tests/faults/main.rs \
 && echo 'fn main() {}' > benches/push_load.rs && cp benches/push_load.rs benches/summary_load.rs && cp benches/push_load.rs benches/transfer_load.rs && cp benches/push_load.rs benches/callback_path.rs && cp benches/push_load.rs benches/callback_load.rs && cp benches/push_load.rs benches/time_parse.rs \
 && cargo build --release --locked --bin wecom-scrm \
 && rm -rf src migrations/src
COPY src src
COPY migrations/src migrations/src
COPY config config
RUN touch src/main.rs src/lib.rs migrations/src/lib.rs \
 && cargo build --release --locked --bin wecom-scrm \
 && strip target/release/wecom-scrm

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin scrm \
 && mkdir -p /app/data /app/config \
 && chown scrm /app/data
WORKDIR /app
COPY --from=build /src/target/release/wecom-scrm /usr/local/bin/wecom-scrm
COPY config/default.toml /app/config/default.toml
USER scrm
# Listen on all interfaces inside the container; the SQLite default lives in the /app/data volume.
ENV SCRM_SERVER__ADDR=0.0.0.0:8080
EXPOSE 8080
VOLUME ["/app/data"]
ENTRYPOINT ["wecom-scrm"]
CMD ["serve"]
