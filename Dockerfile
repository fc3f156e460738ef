# syntax=docker/dockerfile:1
#
# rasentry in a container: a build stage with cgo (gopacket's AF_PACKET
# bindings and libpcap for --bpf expressions need it) and a slim Debian
# runtime with the binary, a non-root user, and file capabilities for
# CAP_NET_RAW and CAP_NET_ADMIN only.
#
#   docker build --build-arg VERSION=$(git describe --tags --always) -t rasentry .
#   docker run --rm --network host --cap-drop ALL --cap-add NET_RAW --cap-add NET_ADMIN \
#     -v /etc/rasentry:/etc/rasentry:ro -v rasentry-spool:/var/lib/rasentry rasentry live
#
# CI cannot run a container engine: .ci/docker-build.sh runs the build
# command below (the RUN line after "ci:build") outside a container, with
# the same ARG values, so a change that breaks this build fails CI.

ARG GO_VERSION=1.26

FROM golang:${GO_VERSION}-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpcap-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Modules first: their layer is reused until go.mod or go.sum change.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG OUT=/out
# ci:build
RUN CGO_ENABLED=1 go build -trimpath -tags libpcap -ldflags="-s -w -X main.version=${VERSION}" -o "${OUT}/rasentry" ./cmd/rasentry

FROM debian:bookworm-slim
# libpcap0.8: the library the binary links (--bpf expressions).
# libcap2-bin: only for setcap, removed in the same layer.
COPY --from=build /out/rasentry /usr/local/bin/rasentry
COPY examples/rasentry.yaml /etc/rasentry/rasentry.yaml
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libpcap0.8 libcap2-bin \
 && setcap cap_net_raw,cap_net_admin=ep /usr/local/bin/rasentry \
 && apt-get purge -y --auto-remove libcap2-bin \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /var/lib/rasentry --shell /usr/sbin/nologin rasentry \
 && install -d -o rasentry -g rasentry -m 0750 /var/lib/rasentry /var/lib/rasentry/spool /var/log/rasentry \
 && chmod 0644 /etc/rasentry/rasentry.yaml
USER rasentry:rasentry
WORKDIR /var/lib/rasentry
# The spool outlives the container: records a sink could not take yet.
VOLUME ["/var/lib/rasentry"]
# Prometheus metrics and /healthz (metrics.addr in rasentry.yaml).
EXPOSE 9765
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["rasentry", "health", "--config", "/etc/rasentry/rasentry.yaml"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["rasentry"]
CMD ["live", "--config", "/etc/rasentry/rasentry.yaml"]
