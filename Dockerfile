# syntax=docker/dockerfile:1

# One image for every component: the container's command picks one with
# -target=<component> (see compose.yaml); without it the binary runs them all.

FROM golang:1.26-bookworm AS build
WORKDIR /src
# Dependencies first, so editing code does not download modules again.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
# CGO off: a static binary for the distroless image (SQLite is pure Go).
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /msdemo . \
    && mkdir /data

# static-debian12 has CA certificates, tzdata and /etc/passwd, and nothing
# else: no shell, no package manager. Health checks use `msdemo healthcheck`.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /msdemo /usr/local/bin/msdemo
# An empty /data owned by the nonroot user, so a fresh named volume mounted
# there is writable (Docker copies the directory's owner into the volume).
COPY --from=build --chown=65532:65532 /data /data
ENV DATA_DIR=/data
VOLUME ["/data"]
USER 65532:65532
# eventstore gateway customer product order accounting storefront admin
EXPOSE 6005 8080 6002 6004 6003 6001 5001 5002
ENTRYPOINT ["/usr/local/bin/msdemo"]
