"""Helpers for the static deployment tests (tests/unit/test_deploy_*.py).

No Docker engine or Kubernetes cluster runs where these tests run, so the deployment
files are checked by reading them: Compose files as the Compose specification merges
them, kustomize directories as ``kubectl kustomize`` renders them, Dockerfiles and
.dockerignore files as Docker's builder reads them.
"""
