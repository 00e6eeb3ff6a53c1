# Multi-stage: build with Debian 12's -dev packages, ship a small runtime
# image whose entrypoint is the connector (edge-sim is included too).
FROM debian:12 AS build
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        build-essential pkg-config libwolfssl-dev libnghttp2-dev libcurl4-openssl-dev \
        libjansson-dev libuv1-dev libsqlite3-dev libhttp-parser-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Makefile ./
COPY scripts scripts
COPY proto proto
COPY rt rt
COPY connector connector
COPY edge-sim edge-sim
COPY docs docs
RUN make -j2 all && make install PREFIX=/usr/local DESTDIR=/out

FROM debian:12-slim
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        libwolfssl35 libnghttp2-14 libcurl4 libjansson4 libuv1 libsqlite3-0 libhttp-parser2.9 \
        ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home /var/lib/connector --create-home connector \
    && chmod 700 /var/lib/connector
COPY --from=build /out/usr/local/bin/ /usr/local/bin/
USER connector
# The connector refuses a state directory others can read; a new volume
# takes this directory's mode (0700).
ENV STATE_DIRECTORY=/var/lib/connector
VOLUME /var/lib/connector
ENTRYPOINT ["connector"]
CMD ["--help"]
