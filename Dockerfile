# jobwire broker. With JOBWIRE_REDIS_URL it is a stateless replica; without, it runs an embedded
# redis-server with AOF persistence under /data.
#
# It listens on 0.0.0.0:50051 and therefore refuses to start unless it is guarded: mount a token
# file (JOBWIRE_AUTH_FILE) and/or certificates with a client CA (JOBWIRE_TLS_CERT, _KEY,
# _CLIENT_CA), or set JOBWIRE_ALLOW_INSECURE=1 where a service mesh terminates mTLS. See the
# README's "Production" section and deploy/.
#
# python:3.11-slim pinned by digest (multi-platform index). Refresh with
#   docker buildx imagetools inspect python:3.11-slim
FROM python:3.11-slim@sha256:9c900dea9e8fb7e16277c179b555cc72d29a352dbc33cff48ad5a0412fd5bfc7

RUN apt-get update \
    && apt-get install -y --no-install-recommends redis-server \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY pyproject.toml LICENSE ./
COPY broker ./broker
COPY sdk/python ./sdk/python
RUN pip install --no-cache-dir --disable-pip-version-check . && rm -rf /src

# A fixed numeric UID/GID, so Kubernetes can check runAsNonRoot and volumes can be chowned.
RUN groupadd --system --gid 10001 jobwire \
    && useradd --system --uid 10001 --gid 10001 --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin jobwire \
    && mkdir -p /data && chown 10001:10001 /data
USER 10001:10001
WORKDIR /data

ENV JOBWIRE_LISTEN=0.0.0.0:50051 JOBWIRE_DATA_DIR=/data PYTHONDONTWRITEBYTECODE=1
VOLUME /data
EXPOSE 50051
# grpc.health.v1 on the local port: SERVING once Redis answers, NOT_SERVING while draining.
# With TLS, set JOBWIRE_TLS_CA (and JOBWIRE_TLS_SERVER_NAME when the certificate does not name
# 127.0.0.1; for mTLS also JOBWIRE_TLS_CLIENT_CERT and _KEY) in the container's environment.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["jobwire", "health", "--timeout", "4"]
CMD ["jobwire", "broker"]
