# The KFP component image: Timonel with the extras its components need (tf, kfp, gcp, s3).
# Built by `make image` (buildah); see components/README.md for pinning and republishing it.
# Every Python package is pinned by image/constraints.txt; the base by its tag (override BASE
# with a digest, python:3.11-slim@sha256:..., to pin it byte for byte).
ARG BASE=docker.io/library/python:3.11.13-slim-bookworm
FROM ${BASE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    VIRTUAL_ENV=/opt/timonel \
    PATH=/opt/timonel/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

RUN python3 -m venv /opt/timonel \
 && pip install pip==26.3

# Dependencies first, in a layer that changes only with setup.cfg or the pins.
COPY image/constraints.txt /tmp/constraints.txt
COPY pyproject.toml setup.cfg README.md /src/
COPY sdk/timonel/_version.py /src/sdk/timonel/_version.py
RUN PIP_CONSTRAINT=/tmp/constraints.txt pip install "/src[tf,kfp,gcp,s3]"

COPY sdk /src/sdk
RUN pip install --no-deps --force-reinstall /src \
 && rm -rf /src /tmp/constraints.txt

RUN useradd --uid 1000 --user-group --create-home --shell /usr/sbin/nologin timonel
USER 1000:1000
WORKDIR /home/timonel
CMD ["timonel", "--help"]
