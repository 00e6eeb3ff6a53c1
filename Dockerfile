# Multi-stage: build with Debian 12's -dev packages and a static wolfSSL with
# assembly built from Debian's own source package (scripts/wolfssl-src.sh),
# ship a small runtime image whose entrypoint is the connector (edge-sim is
# included too).
FROM debian:12 AS build
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        build-essential pkg-config libnghttp2-dev libcurl4-openssl-dev \
        libjansson-dev libuv1-dev libsqlite3-dev libpq-dev libhttp-parser-dev \
        dpkg-dev autoconf automake libtool ca-certificates \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# wolfSSL first, in its own layer: it depends on this script alone, so a
# change to the code does not rebuild it. The script adds deb-src entries
# mirroring the image's debian.sources, runs apt-get update and apt-get
# source; the lists go afterwards.
COPY scripts/wolfssl-src.sh scripts/
RUN bash scripts/wolfssl-src.sh build/wolfssl && rm -rf /var/lib/apt/lists/*
COPY Makefile ./
COPY scripts scripts
COPY proto proto
COPY rt rt
COPY connector connector
COPY edge-sim edge-sim
COPY docs docs
RUN make -j2 all && make install PREFIX=/usr/local DESTDIR=/out

# wolfSSL is linked statically: no libwolfssl here.
FROM debian:12-slim
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        libnghttp2-14 libcurl4 libjansson4 libuv1 libsqlite3-0 libpq5 libhttp-parser2.9 \
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
