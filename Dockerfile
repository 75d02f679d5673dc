# CPU-only image of rca: OTLP/HTTP receiver, API and CLI.
#   docker build -t rca .
#   docker run -p 4318:4318 -v rca-data:/data rca
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    RCA_HOME=/data \
    HF_HUB_OFFLINE=1

WORKDIR /app

# torch from the CPU wheel index first, so `pip install .` does not pull the CUDA build
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0

COPY pyproject.toml README.md ./
COPY rca ./rca
RUN pip install .
# compile the numba protobuf decoder into the image (from /tmp: the installed package, not ./rca)
RUN cd /tmp && python -c "from rca.ingest.otlp_wire import warm_up; warm_up()"

VOLUME ["/data"]
EXPOSE 4318

CMD ["rca", "serve", "--host", "0.0.0.0"]
