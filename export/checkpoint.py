"""Checkpoint file -> eval-mode torchvision ResNet50, with its head inferred from the keys."""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torchvision.models import resnet50

from export.errors import ExportError
from export.head import HEAD_PREFIX, HeadSpec, infer_head, plain_head
from modelrepo.files import file_sha256

# Containers that training scripts commonly wrap a state_dict in.
STATE_DICT_KEYS = ("state_dict", "model_state_dict")
# Added by nn.DataParallel / DistributedDataParallel.
PARALLEL_PREFIX = "module."
# Seed of the untrained model, so that two untrained exports are identical.
UNTRAINED_SEED = 0
_BATCHES_TRACKED = "num_batches_tracked"
_SHOWN_KEYS = 5
# Below 1/10 of ResNet50's key names in common, a checkpoint is some other network entirely.
_MIN_SHARED_FRACTION = 10


@dataclass
class LoadedModel:
    """A ResNet50 in eval mode and where it came from."""

    model: nn.Module
    head: HeadSpec
    checkpoint_sha256: str | None
    untrained: bool


def load_model(path: Path) -> LoadedModel:
    """Load a checkpoint file into a ResNet50 whose head matches the checkpoint's keys."""
    state_dict = read_state_dict(path)
    model, head = build_resnet50(state_dict, source=str(path))
    return LoadedModel(model, head, file_sha256(path), untrained=False)


def untrained_model(num_classes: int) -> LoadedModel:
    """A seeded, randomly initialised ResNet50 with a Linear(2048, num_classes) head."""
    head = plain_head(num_classes)
    # fork_rng: seed for reproducibility without changing the caller's random state.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(UNTRAINED_SEED)
        model = resnet50(weights=None, num_classes=num_classes)
    return LoadedModel(model.eval(), head, checkpoint_sha256=None, untrained=True)


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Read a state_dict (possibly wrapped, possibly from DataParallel) from a file."""
    path = Path(path)
    if not path.is_file():
        raise ExportError(f"checkpoint {path} does not exist or is not a file")
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "Weights only load failed" in str(exc):
            raise ExportError(
                f"checkpoint {path} holds pickled Python objects, not just tensors (a whole "
                "nn.Module?); for safety only state_dicts are loaded: re-save it with "
                "torch.save(model.state_dict(), PATH)"
            ) from None
        raise _not_a_checkpoint(path, exc) from None
    except Exception as exc:  # torch.load raises many types for a file that is not a checkpoint
        raise _not_a_checkpoint(path, exc) from exc
    return _unwrap(loaded, path)


def build_resnet50(state_dict: dict[str, torch.Tensor], source: str) -> tuple[nn.Module, HeadSpec]:
    """Check the backbone keys, infer the head and load everything strictly; eval mode."""
    state_dict = dict(state_dict)
    _check_backbone(state_dict, source)
    head = infer_head(state_dict)
    model = resnet50(weights=None)
    model.fc = head.build()
    try:
        model.load_state_dict(state_dict, strict=True)
    except RuntimeError as exc:
        raise ExportError(f"checkpoint {source} does not fit a ResNet50 with head {head.describe()}: {exc}") from None
    return model.eval(), head


def _unwrap(loaded: object, path: Path) -> dict[str, torch.Tensor]:
    if isinstance(loaded, dict):
        for key in STATE_DICT_KEYS:
            if isinstance(loaded.get(key), dict):
                loaded = loaded[key]
                break
    if not isinstance(loaded, dict) or not loaded:
        raise ExportError(
            f"checkpoint {path} holds {_kind(loaded)}, not a state_dict; expected a dict of "
            f"tensors, or a dict with one under {' or '.join(repr(k) for k in STATE_DICT_KEYS)}"
        )
    not_tensors = [str(k) for k, v in loaded.items() if not isinstance(v, torch.Tensor)]
    if not_tensors:
        raise ExportError(
            f"checkpoint {path} holds a dict whose entries {_some(not_tensors)} are not tensors "
            f"and no {' or '.join(repr(k) for k in STATE_DICT_KEYS)} entry; expected a state_dict"
        )
    return {_strip_parallel(str(k)): v for k, v in loaded.items()}


def _strip_parallel(key: str) -> str:
    return key.removeprefix(PARALLEL_PREFIX)


def _check_backbone(state_dict: dict[str, torch.Tensor], source: str) -> None:
    """Compare every non-head key with torchvision's ResNet50; fill absent BN counters."""
    with torch.device("meta"):  # keys and shapes only, no memory and no init time
        reference = {k: v for k, v in resnet50(weights=None).state_dict().items() if not k.startswith(HEAD_PREFIX)}
    backbone = {k: v for k, v in state_dict.items() if not k.startswith(HEAD_PREFIX)}
    if len(reference.keys() & backbone.keys()) < len(reference) // _MIN_SHARED_FRACTION:
        raise ExportError(
            f"checkpoint {source} is not a torchvision ResNet50 state_dict: it has {len(state_dict)} "
            f"keys such as {_some(sorted(state_dict))}; expected keys such as "
            "conv1.weight, bn1.weight, layer1.0.conv1.weight, ..., layer4.2.bn3.weight, fc.weight"
        )
    # Older checkpoints lack BatchNorm's num_batches_tracked; it does not affect eval output.
    for key in reference.keys() - backbone.keys():
        if key.endswith(_BATCHES_TRACKED):
            state_dict[key] = backbone[key] = torch.tensor(0, dtype=torch.long)
    missing = sorted(reference.keys() - backbone.keys())
    unexpected = sorted(backbone.keys() - reference.keys())
    wrong_shape = [
        f"{k} {tuple(backbone[k].shape)} (ResNet50: {tuple(reference[k].shape)})"
        for k in sorted(reference.keys() & backbone.keys())
        if backbone[k].shape != reference[k].shape
    ]
    problems = []
    if missing:
        problems.append(f"{len(missing)} ResNet50 keys are missing ({_some(missing)})")
    if unexpected:
        problems.append(f"{len(unexpected)} keys are not part of ResNet50 ({_some(unexpected)})")
    if wrong_shape:
        problems.append(f"{len(wrong_shape)} tensors have the wrong shape ({_some(wrong_shape)})")
    if problems:
        raise ExportError(
            f"checkpoint {source} does not match torchvision's ResNet50 backbone: "
            + "; ".join(problems)
            + ". Export needs a state_dict of torchvision.models.resnet50 with a Linear or "
            "Sequential fc head"
        )


def _not_a_checkpoint(path: Path, exc: BaseException) -> ExportError:
    reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
    return ExportError(
        f"{path} is not a readable PyTorch checkpoint ({reason}); expected a file written by "
        "torch.save(model.state_dict(), PATH)"
    )


def _kind(value: object) -> str:
    if isinstance(value, dict):
        return "an empty dict"
    return f"a {type(value).__name__}"


def _some(items: list[str]) -> str:
    shown = ", ".join(items[:_SHOWN_KEYS])
    return shown + (", ..." if len(items) > _SHOWN_KEYS else "")
