# syntax=docker/dockerfile:1
# Two images from one file (docker-compose.yml builds both):
#   docker build --target app -t natomedia-app .          every service, and the migrate job
#   docker build --target gateway -t natomedia-gateway .  nginx with services/gateway/nginx/docker.conf
# No secret enters either image: keys and passwords arrive at run time, as environment variables
# or as files mounted under /run/secrets (VAR_FILE, see deploy/docker-entrypoint.sh).

FROM python:3.11-slim-bookworm AS app
# ffprobe reads duration, size and codecs at `natomedia media ingest`; skip it for a smaller image.
ARG INSTALL_FFMPEG=true
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN if [ "$INSTALL_FFMPEG" = true ]; then \
        apt-get update && apt-get install -y --no-install-recommends ffmpeg \
        && rm -rf /var/lib/apt/lists/*; \
    fi \
    && groupadd --system --gid 10001 natomedia \
    && useradd --system --uid 10001 --gid natomedia --home-dir /srv --no-create-home natomedia \
    && mkdir -p /srv/data /srv/media /srv/docs \
    && chown natomedia:natomedia /srv/data /srv/media /srv/docs
WORKDIR /app
COPY requirements/app.lock ./requirements/
RUN pip install --no-compile --require-hashes -r requirements/app.lock
COPY pyproject.toml README.md ./
COPY services ./services
RUN pip install --no-compile --no-deps . && rm -rf /app/services
COPY deploy/docker-entrypoint.sh /usr/local/bin/natomedia-entrypoint
# Empty named volumes mounted on /srv/* take this ownership on first use.
USER natomedia
ENV NATOMEDIA_ENV=production \
    NATOMEDIA_DATA_DIR=/srv/data \
    MEDIA_STORAGE_DIR=/srv/media
WORKDIR /srv
EXPOSE 8000
ENTRYPOINT ["natomedia-entrypoint"]
CMD ["natomedia", "serve", "auth", "--host", "0.0.0.0", "--port", "8000"]

FROM debian:bookworm-slim AS gateway
# The same nginx package `natomedia stack` and the end-to-end tests run.
RUN apt-get update \
    && apt-get install -y --no-install-recommends nginx-light curl \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /tmp/nginx /srv/media /srv/docs \
    && chown www-data:www-data /tmp/nginx
COPY services/gateway/nginx/docker.conf /etc/natomedia/nginx.conf
USER www-data
EXPOSE 8080
CMD ["nginx", "-c", "/etc/natomedia/nginx.conf", "-e", "stderr", "-g", "daemon off;"]
