# auditwatch in a container: a static binary on a minimal, non-root image.
#
#   docker build -t auditwatch .
#   docker run -d --name auditwatch \
#     -v $PWD/auditwatch.yaml:/etc/auditwatch/auditwatch.yaml:ro \
#     -v auditwatch-state:/var/lib/auditwatch \
#     -e OPENAI_ADMIN_KEY -e SLACK_BOT_TOKEN \
#     auditwatch
#
# The config's `state.path` should be /var/lib/auditwatch/auditwatch.db (the
# volume), and `server.listen` set for the health check (127.0.0.1:9464).

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN RUSTFLAGS="-C target-feature=+crt-static" \
    cargo build --release --locked --target x86_64-unknown-linux-gnu --bin auditwatch \
 && cp target/x86_64-unknown-linux-gnu/release/auditwatch /auditwatch \
 && strip /auditwatch \
 && mkdir -p /state

# CA certificates and a non-root user; nothing else.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /auditwatch /usr/local/bin/auditwatch
# The state folder, owned by the image's non-root user (65532), so that a
# named volume mounted there is writable.
COPY --from=build --chown=65532:65532 /state /var/lib/auditwatch
USER 65532:65532
VOLUME ["/var/lib/auditwatch"]
WORKDIR /var/lib/auditwatch
HEALTHCHECK --interval=30s --timeout=10s --start-period=2m \
  CMD ["/usr/local/bin/auditwatch", "health", "-c", "/etc/auditwatch/auditwatch.yaml"]
ENTRYPOINT ["/usr/local/bin/auditwatch"]
CMD ["watch", "-c", "/etc/auditwatch/auditwatch.yaml", "--log-format", "json"]
