# The hosted demo: EXPLORER_PROFILE=hosted, prefetched weights/datasets/lesson results, health check.
#   docker build -t adversarial-explorer .
#   docker run -p 8501:8501 adversarial-explorer
# Several replicas: see docs (README "Host it for a team"): sticky sessions + EXPLORER_REDIS_URL.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    EXPLORER_PROFILE=hosted \
    EXPLORER_CACHE_DIR=/cache/explorer \
    TORCH_HOME=/cache/torch \
    NUMBA_CACHE_DIR=/cache/numba \
    MPLCONFIGDIR=/cache/matplotlib \
    # a shared server: each of the EXPLORER_WORKERS job threads gets its share of the cores (0: cores / workers)
    OMP_NUM_THREADS=1 \
    EXPLORER_TORCH_THREADS=0 \
    EXPLORER_WORKERS=2 \
    EXPLORER_SESSION_JOBS=1

WORKDIR /app
COPY requirements.txt pyproject.toml ./
# requirements.txt ends with "-e ." (the package itself): install the dependencies first, the package with the code
RUN grep -v '^-e \.' requirements.txt > /tmp/req.txt && pip install -r /tmp/req.txt
COPY . .
RUN pip install --no-deps -e . && useradd --create-home --uid 10001 explorer \
    && mkdir -p /cache && chown -R explorer /cache /app
USER explorer

# Offline-ready image: MNIST, the photo model the lessons use, the built-in models and every lesson's results.
# (Needs the network at build time; a failed download leaves that model "needs download" and the build goes on.)
ARG PREFETCH="mnist resnet18"
RUN python -m explorer prefetch ${PREFETCH} --lesson all || echo "prefetch incomplete: see the lines above"

EXPOSE 8501
HEALTHCHECK --interval=30s --timeout=5s --start-period=90s --retries=3 \
    CMD python -c "import sys, urllib.request as u; sys.exit(0 if u.urlopen('http://127.0.0.1:8501/_stcore/health', timeout=4).read().strip() == b'ok' else 1)"

CMD ["python", "-m", "streamlit", "run", "streamlit_app.py", \
     "--server.port=8501", "--server.address=0.0.0.0", "--server.headless=true", \
     "--browser.gatherUsageStats=false", \
     "--server.disconnectedSessionTTL=120", \
     "--server.maxUploadSize=20", \
     "--client.showErrorDetails=none", \
     "--client.toolbarMode=viewer"]
