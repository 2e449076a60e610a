#!/usr/bin/env bash
# Build (and with --push, push) the k8stars images from the repository root, in dependency order:
#   k8stars/base and k8stars/registry (context: the repository root), then
#   k8stars/example-<name> for each examples/<name>/Dockerfile (context: examples/<name>).
# Usage: deploy/docker/build.sh [--push] [--prefix REGISTRY/] [--tag TAG]
#   --prefix  prepended to every image name (e.g. registry.example.com/)
#   --tag     image tag (default: the version in pyproject.toml)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
push=0
prefix=""
tag="$(sed -n 's/^version *= *"\(.*\)"/\1/p' pyproject.toml | head -n 1)"
while [ $# -gt 0 ]; do
  case "$1" in
    --push) push=1 ;;
    --prefix) prefix="$2"; shift ;;
    --tag) tag="$2"; shift ;;
    *) echo "usage: $0 [--push] [--prefix REGISTRY/] [--tag TAG]" >&2; exit 2 ;;
  esac
  shift
done
base="${prefix}k8stars/base:${tag}"
built=()
build() {  # build IMAGE DOCKERFILE CONTEXT [--build-arg ...]
  local image="$1" file="$2" context="$3"
  shift 3
  echo "== ${image} (${file})"
  docker build -f "$file" -t "$image" "$@" "$context"
  built+=("$image")
}
build "$base" deploy/docker/base.Dockerfile .
build "${prefix}k8stars/registry:${tag}" deploy/docker/registry.Dockerfile . \
  --build-arg "BASE_IMAGE=${base}"
# the examples' Dockerfiles say FROM k8stars/base (no tag): make that name this build
docker tag "$base" k8stars/base:latest
for dockerfile in examples/*/Dockerfile; do
  [ -f "$dockerfile" ] || continue
  dir="$(dirname "$dockerfile")"
  build "${prefix}k8stars/example-$(basename "$dir"):${tag}" "$dockerfile" "$dir" \
    --build-arg "SERVER_VERSION=${tag}"
done
if [ "$push" = 1 ]; then
  for image in "${built[@]}"; do
    docker push "$image"
  done
fi
