FROM python:3.11-slim
WORKDIR /app
COPY . /app
# Editable install: the CLI finds alembic.ini and migrations/ beside the package.
RUN pip install --no-cache-dir -e . && useradd --system --home /app exporter
USER exporter
ENTRYPOINT ["lineage-exporter"]
CMD ["--help"]
