# One image for every service: `python -m <package>` picks the service (see k8s/).
# Build from the repository root: docker build -t ghcr.io/casino-platform/casino:<tag> .

FROM python:3.11-slim-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends make \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Makefile pyproject.toml README.md ./
COPY proto ./proto
RUN make proto VENV=/opt/casino
ENV PATH=/opt/casino/bin:$PATH
COPY casino_kit ./casino_kit
COPY casino_cli ./casino_cli
COPY bench ./bench
COPY session_svc ./session_svc
COPY game_svc ./game_svc
COPY rng_svc ./rng_svc
COPY wallet_svc ./wallet_svc
COPY ingest_svc ./ingest_svc
COPY edge_relay ./edge_relay
RUN pip install --no-cache-dir . && pip uninstall -y grpcio-tools mypy-protobuf

FROM python:3.11-slim-bookworm
RUN apt-get update \
 && apt-get install -y --no-install-recommends softhsm2 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --uid 10001 --user-group --no-create-home casino
COPY --from=build /opt/casino /opt/casino
ENV PATH=/opt/casino/bin:$PATH PYTHONUNBUFFERED=1 CASINO_HOST=0.0.0.0
USER 10001
ENTRYPOINT ["python", "-m"]
CMD ["session_svc"]
