# syntax=docker/dockerfile:1
# Two glue images from one Dockerfile, both running as the non-root user 10001:
#
#   small  glue only (hooks, announce, bump, notify): the Helm hook Jobs of charts/glue-hooks
#          run it with a read-only root filesystem.
#   full   glue with helm 3, helmfile and helm-diff at pinned versions, and git: CI deploy jobs
#          (ci-templates/). The default target.
#
#   docker build --target small -t registry.example.com/team/gitops-glue:0.1.0-small .
#   docker build -t registry.example.com/team/gitops-glue:0.1.0 .
#
# The tool versions are the ones the test suite runs (scripts/testbed); each download is
# checked against the checksum file its release publishes.
#
# Build arguments for builds without Docker Hub or GitHub (the test suite, scripts/build-image):
#   BASE=rootfs   the base is build/rootfs.tar from the build context (a Debian root filesystem
#                 with python3, python3-venv and ca-certificates, made by mmdebstrap) instead
#                 of PYTHON_IMAGE.
#   TOOLS=context helm, helmfile and the helm-diff plugin come from build/tools/ in the build
#                 context (bin/helm, bin/helmfile, plugins/helm-diff/) instead of downloads.

ARG PYTHON_IMAGE=python:3.12-slim-bookworm
ARG BASE=upstream
ARG TOOLS=download

FROM ${PYTHON_IMAGE} AS base-upstream

FROM scratch AS base-rootfs
ADD build/rootfs.tar /

# hadolint ignore=DL3006
FROM base-${BASE} AS base

FROM base AS tools-download
ARG TARGETARCH=amd64
ARG HELM_VERSION=3.18.0
ARG HELMFILE_VERSION=0.166.0
ARG HELM_DIFF_VERSION=3.9.14
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /tmp/tools
RUN curl -fsSLO "https://get.helm.sh/helm-v${HELM_VERSION}-linux-${TARGETARCH}.tar.gz" \
 && curl -fsSL "https://get.helm.sh/helm-v${HELM_VERSION}-linux-${TARGETARCH}.tar.gz.sha256sum" | sha256sum -c - \
 && tar -xzf "helm-v${HELM_VERSION}-linux-${TARGETARCH}.tar.gz" \
 && install -m 0755 "linux-${TARGETARCH}/helm" /usr/local/bin/helm
RUN base="https://github.com/helmfile/helmfile/releases/download/v${HELMFILE_VERSION}" \
 && curl -fsSLO "${base}/helmfile_${HELMFILE_VERSION}_linux_${TARGETARCH}.tar.gz" \
 && curl -fsSL "${base}/helmfile_${HELMFILE_VERSION}_checksums.txt" \
    | grep " helmfile_${HELMFILE_VERSION}_linux_${TARGETARCH}.tar.gz\$" | sha256sum -c - \
 && tar -xzf "helmfile_${HELMFILE_VERSION}_linux_${TARGETARCH}.tar.gz" helmfile \
 && install -m 0755 helmfile /usr/local/bin/helmfile
# helm-diff unpacked straight into the plugins folder (helm plugin install needs git).
RUN curl -fsSLo helm-diff.tgz \
    "https://github.com/databus23/helm-diff/releases/download/v${HELM_DIFF_VERSION}/helm-diff-linux-${TARGETARCH}.tgz" \
 && mkdir -p /opt/helm/plugins \
 && tar -xzf helm-diff.tgz -C /opt/helm/plugins

FROM base AS tools-context
COPY build/tools/bin/ /usr/local/bin/
COPY build/tools/plugins/ /opt/helm/plugins/

# hadolint ignore=DL3006
FROM tools-${TOOLS} AS tools

FROM base AS glue
# PIP_CERT: a CA bundle for pip behind a TLS-inspecting proxy (scripts/build-image mounts the
# host's); unset, pip uses its own.
ARG PIP_CERT
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY gitops_glue ./gitops_glue
RUN python3 -m venv /opt/glue \
 && /opt/glue/bin/pip install . \
 && /opt/glue/bin/pip uninstall --yes --quiet setuptools pip \
 && /opt/glue/bin/glue --version

FROM base AS small
LABEL org.opencontainers.image.title="gitops-glue-small" \
      org.opencontainers.image.description="glue only: Helm hook notifications, announce, bump, notify"
COPY --from=glue /opt/glue /opt/glue
RUN useradd --uid 10001 --user-group --home-dir /home/glue --create-home --shell /bin/sh glue
ENV PATH=/opt/glue/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 10001:10001
WORKDIR /home/glue
RUN glue --version
CMD ["glue", "--help"]

FROM small AS full
LABEL org.opencontainers.image.title="gitops-glue" \
      org.opencontainers.image.description="glue with helm 3, helmfile, helm-diff, git, ssh-keygen and gpg"
USER 0:0
# git: helmfile and helm fetch chart dependencies with it, and glue verify-history reads
# signatures with it; ca-certificates: TLS; openssh-client (ssh-keygen) and gnupg: signed
# commits (git.sign: ssh | gpg).
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends git ca-certificates openssh-client gnupg \
 && rm -rf /var/lib/apt/lists/*
COPY --from=tools /usr/local/bin/helm /usr/local/bin/helmfile /usr/local/bin/
COPY --from=tools /opt/helm/plugins /opt/helm/plugins
# Helm's writable state lives under /tmp (a volume in read-only-root pods); the plugins stay put.
ENV HELM_PLUGINS=/opt/helm/plugins \
    HELM_CACHE_HOME=/tmp/helm/cache \
    HELM_CONFIG_HOME=/tmp/helm/config \
    HELM_DATA_HOME=/tmp/helm/data
USER 10001:10001
RUN glue --version && helm version --short && helmfile --version && helm diff version
