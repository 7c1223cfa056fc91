#!/usr/bin/env bash
# Validates what operators deploy (run by `make validate-deploy`, hence by `make test`):
#   1. every manifest of deploy/k8s against the Kubernetes $KUBERNETES_VERSION OpenAPI schemas,
#      strictly (kubernetes-validate --strict: an unknown or misspelt field is an error);
#   2. deploy/check_deploy.py: compose.yaml, the manifests and the Dockerfile against the code
#      (pulsed flags from crates/pulsed/src/cli.rs, config keys from ServerConfig, peers,
#      probes, preStop drain, labels, the three binaries in the image);
#   3. if kubectl is installed, that `kubectl kustomize deploy/k8s` renders.
# Prints every failure and exits non-zero if there is any.
#
# The tools live in a Python venv cached at ${XDG_CACHE_HOME:-$HOME/.cache}/pulse-deploy-venv
# (created on first use from PyPI, reused while the pinned versions below stay the same).
# Needs python3 with venv and pip (Debian: python3-venv python3-pip; `make validate-deploy`
# installs them). Environment: PYTHON (default /usr/bin/python3 if present), KUBERNETES_VERSION.
set -euo pipefail

KUBERNETES_VALIDATE_VERSION=1.37.0
PYYAML_VERSION=6.0.4
# The Kubernetes version whose schemas the manifests must satisfy (one of those bundled by
# kubernetes-validate). Native gRPC probes are GA since 1.27.
KUBERNETES_VERSION=${KUBERNETES_VERSION:-1.30.0}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${XDG_CACHE_HOME:-$HOME/.cache}/pulse-deploy-venv
REQUIREMENTS="kubernetes-validate==$KUBERNETES_VALIDATE_VERSION PyYAML==$PYYAML_VERSION"
if [[ -z ${PYTHON:-} ]]; then
  if [[ -x /usr/bin/python3 ]]; then PYTHON=/usr/bin/python3; else PYTHON=python3; fi
fi

die() { echo "validate-deploy: $*" >&2; exit 1; }

# (Re)create the venv unless it already holds exactly these requirements.
if [[ ! -x $VENV/bin/python || "$(cat "$VENV/.requirements" 2>/dev/null)" != "$REQUIREMENTS" ]]; then
  echo "validate-deploy: creating $VENV ($REQUIREMENTS)"
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV" || die "$PYTHON -m venv failed (install python3-venv)"
  # shellcheck disable=SC2086  # REQUIREMENTS is a list of words
  "$VENV/bin/pip" install --quiet --disable-pip-version-check $REQUIREMENTS \
    || { rm -rf "$VENV"; die "pip install $REQUIREMENTS failed"; }
  echo "$REQUIREMENTS" >"$VENV/.requirements"
fi

status=0
manifests=()
for file in "$ROOT"/deploy/k8s/*.yaml; do
  [[ $(basename "$file") == kustomization.yaml ]] || manifests+=("$file")
done
[[ ${#manifests[@]} -gt 0 ]] || die "no manifests in deploy/k8s"

echo "validate-deploy: ${#manifests[@]} manifests against Kubernetes $KUBERNETES_VERSION (strict)"
if ! "$VENV/bin/kubernetes-validate" --strict --quiet --kubernetes-version "$KUBERNETES_VERSION" "${manifests[@]}"; then
  echo "FAIL kubernetes-validate: deploy/k8s does not match the Kubernetes $KUBERNETES_VERSION schemas" >&2
  status=1
fi

"$VENV/bin/python" "$ROOT/deploy/check_deploy.py" "$ROOT" || status=1

if command -v kubectl >/dev/null; then
  if kubectl kustomize "$ROOT/deploy/k8s" >/dev/null; then
    echo "validate-deploy: kubectl kustomize deploy/k8s renders"
  else
    echo "FAIL kubectl kustomize deploy/k8s" >&2
    status=1
  fi
else
  echo "validate-deploy: kubectl not installed, kustomization render not checked"
fi

if [[ $status == 0 ]]; then
  echo "validate-deploy: ok"
else
  echo "validate-deploy: FAILED" >&2
fi
exit $status
