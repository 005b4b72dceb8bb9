# A model image: one exported Triton model repository, for Kubernetes to copy into the
# model-repository volume (an init container of the Triton pod runs the copy).
# Its build context is the model repository itself, not the project:
#
#   podium export --checkpoint resnet50_sports.pt --target gpu --model-repository model_repository
#   docker build -f deploy/docker/model.Dockerfile -t REGISTRY/podium-model:v1 model_repository
#
# Tag it per export; rolling out a new model version is `kustomize edit set image` with the
# new tag (docs/deploy.md). The GPU engine is NOT in here: it is built on the serving GPU.
# deploy/docker/model.Dockerfile.dockerignore keeps the README and leftovers of failed exports out.

# busybox: the smallest image with the `sh` and `cp` that the init container runs.
FROM busybox:1.37.0
COPY . /model_repository/
# Triton's image runs as uid 1000 (triton-server); so do the copy and the engine build.
USER 1000:1000
