# VillageHub hub image: `villagehub serve` with the wall screen.
FROM python:3.11-slim-bookworm
RUN apt-get update && apt-get install -y --no-install-recommends nodejs npm espeak-ng curl \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY hub ./hub
COPY device_sim ./device_sim
COPY bench ./bench
RUN pip install --no-cache-dir .
COPY dashboards ./dashboards
RUN cd dashboards && (npm ci --no-audit --no-fund || npm install --no-audit --no-fund)
# Not root: the hub needs no privilege. /data is its private state (0700; `villagehub` sets
# umask 077, so the databases, spool and snapshots are 0600).
RUN useradd --system --uid 10001 --home-dir /data --no-create-home villagehub \
    && install -d -m 0700 -o villagehub -g villagehub /data
# 0.0.0.0 inside the container only; docker-compose.yml publishes the port on the host's loopback.
ENV VH_HTTP_HOST=0.0.0.0 VH_DATA_DIR=/data
USER villagehub
VOLUME /data
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s CMD curl -fsS http://127.0.0.1:8000/healthz || exit 1
CMD ["villagehub", "serve"]
