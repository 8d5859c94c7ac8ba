# Switchboard image for docker-compose.yml (web and worker run the Procfile's commands).
# torch is installed first and pinned, as the Makefile does: point pip at a CPU wheel index with
# --build-arg PIP_EXTRA_INDEX_URL=... or the image grows by several GB of CUDA libraries.
FROM python:3.11-slim
ARG PIP_EXTRA_INDEX_URL=""
ENV PIP_EXTRA_INDEX_URL=${PIP_EXTRA_INDEX_URL} PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 \
    TOKENIZERS_PARALLELISM=false
WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot bot
COPY channels channels
COPY kb_index kb_index
COPY handoff handoff
COPY kb kb
RUN pip install --no-cache-dir torch==2.13.0 && pip install --no-cache-dir .
EXPOSE 8000
CMD ["switchboard", "serve", "--host", "0.0.0.0", "--port", "8000"]
