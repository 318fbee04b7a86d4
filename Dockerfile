# tasklake: one process serving OTLP/HTTP + REST API on 4318 and OTLP/gRPC on 4317.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY ingest ./ingest
COPY schemas ./schemas
COPY service ./service
RUN pip install --no-cache-dir .
ENV TASKLAKE_LAKE=/data/lake \
    TASKLAKE_HOST=0.0.0.0
VOLUME ["/data/lake"]
EXPOSE 4318 4317
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s \
  CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:4318/healthz').status != 200)"
CMD ["tasklake", "serve"]
