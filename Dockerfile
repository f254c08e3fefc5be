FROM python:3.11-slim
WORKDIR /app
COPY . /app
# Editable install: the CLI finds alembic.ini and migrations/ beside the package. Its bytecode
# is compiled here: the exporter user cannot write __pycache__ under /app, and would otherwise
# compile every module again at each start of a command.
RUN pip install --no-cache-dir -e . && python -m compileall -q exporter migrations \
    && useradd --system --home /app exporter
USER exporter
ENTRYPOINT ["lineage-exporter"]
CMD ["--help"]
