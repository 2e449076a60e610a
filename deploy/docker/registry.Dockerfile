# syntax=docker/dockerfile:1
# k8stars/registry: the registry process (QueryObj 17890, Registry 17891, AdminObj 17897 on
# 127.0.0.1, HTTP /metrics /sd /healthz 9100), on the base image built first:
#
#   docker build -f deploy/docker/base.Dockerfile     -t k8stars/base:0.1.0 .
#   docker build -f deploy/docker/registry.Dockerfile -t k8stars/registry:0.1.0 .
#
# Database: DB_DSN, or DB_HOST/DB_PORT/DB_USER/DB_PASS (see docs/deploy.md).
ARG BASE_IMAGE=k8stars/base:0.1.0
FROM ${BASE_IMAGE}
USER 10001:10001
EXPOSE 17890 17891 17897 9100
CMD ["tarsregistry"]
