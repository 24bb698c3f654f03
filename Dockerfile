# Footfall API image: slim, non-root. Build: docker build -t footfall .
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY graph ./graph
COPY resolvers ./resolvers
COPY db ./db
COPY migrations ./migrations
RUN pip install --no-cache-dir --prefix=/install . \
 && PYTHONPATH=/install/lib/python3.11/site-packages /install/bin/footfall assets

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 footfall
COPY --from=build /install /usr/local
USER footfall
WORKDIR /home/footfall
ENV ENVIRONMENT=production PORT=3002 HOST=0.0.0.0 FOOTFALL_DATA_DIR=/home/footfall/data
EXPOSE 3002
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD python -c "import os, sys, urllib.request; port = os.environ.get('PORT', '3002'); sys.exit(0 if urllib.request.urlopen(f'http://127.0.0.1:{port}/ready', timeout=4).status == 200 else 1)"
CMD ["footfall", "serve"]
