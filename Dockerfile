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
ENV VH_HTTP_HOST=0.0.0.0 VH_DATA_DIR=/data
VOLUME /data
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s CMD curl -fsS http://127.0.0.1:8000/healthz || exit 1
CMD ["villagehub", "serve"]
