# jobwire broker with an embedded Redis (AOF under /data). Point JOBWIRE_REDIS_URL at an external
# Redis to run it stateless instead.
FROM python:3.11-slim

RUN apt-get update \
    && apt-get install -y --no-install-recommends redis-server \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY pyproject.toml ./
COPY broker ./broker
COPY sdk/python ./sdk/python
RUN pip install --no-cache-dir . && rm -rf /src

RUN useradd --system --home-dir /data jobwire && mkdir -p /data && chown jobwire /data
USER jobwire
WORKDIR /data

ENV JOBWIRE_LISTEN=0.0.0.0:50051 JOBWIRE_DATA_DIR=/data
VOLUME /data
EXPOSE 50051
CMD ["jobwire", "broker"]
