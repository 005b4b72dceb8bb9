"""Checkpoint file -> eval-mode torchvision classifier: the network detected from the keys and
shapes (``export.architectures``), its head inferred from the keys (``export.head``)."""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from export.architectures import ARCHITECTURES, BATCHES_TRACKED, Architecture, backbone_mismatch, detect, some
from export.errors import ExportError
from export.head import HeadSpec, infer_head
from podium.core.modelmeta import DEFAULT_ARCHITECTURE
from podium.stores.modelrepo.files import file_sha256

# Containers that training scripts commonly wrap a state_dict in.
STATE_DICT_KEYS = ("state_dict", "model_state_dict")
# Added by nn.DataParallel / DistributedDataParallel.
PARALLEL_PREFIX = "module."
# Seed of the untrained model, so that two untrained exports are identical.
UNTRAINED_SEED = 0


@dataclass
class LoadedModel:
    """A classifier in eval mode, what it is and where it came from."""

    model: nn.Module
    head: HeadSpec
    checkpoint_sha256: str | None
    untrained: bool
    arch: Architecture = ARCHITECTURES[DEFAULT_ARCHITECTURE]
    detected: bool = False  # the architecture was read from the keys (not named by --arch)
    grey: bool = False  # its first convolution takes one channel

    @property
    def channels(self) -> int:
        return 1 if self.grey else 3


def load_model(path: Path, arch: str | None = None) -> LoadedModel:
    """Load a checkpoint file into the network ``arch`` (default: the one its keys and shapes
    are), with a head that matches the checkpoint's keys."""
    state_dict = read_state_dict(path)
    network = ARCHITECTURES[arch] if arch else detect(state_dict, str(path))
    model, head = build_model(state_dict, network, source=str(path))
    grey = network.takes_grey(state_dict)
    return LoadedModel(model, head, file_sha256(path), False, network, detected=arch is None, grey=grey)


def untrained_model(num_classes: int, arch: str = DEFAULT_ARCHITECTURE) -> LoadedModel:
    """A seeded, randomly initialised network with torchvision's head for ``num_classes``."""
    network = ARCHITECTURES[arch]
    # fork_rng: seed for reproducibility without changing the caller's random state.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(UNTRAINED_SEED)
        model = network.build(num_classes)
    head = infer_head(model.state_dict(), network)
    return LoadedModel(model.eval(), head, checkpoint_sha256=None, untrained=True, arch=network)


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


def build_model(state_dict: dict[str, torch.Tensor], arch: Architecture, source: str) -> tuple[nn.Module, HeadSpec]:
    """Check the backbone keys, infer the head and load everything strictly; eval mode."""
    state_dict = dict(state_dict)
    _check_backbone(state_dict, arch, source)
    head = infer_head(state_dict, arch)
    model = arch.build()
    if arch.takes_grey(state_dict):
        arch.grey_stem(model)
    setattr(model, arch.head, head.build(model))
    try:
        model.load_state_dict(state_dict, strict=True)
    except RuntimeError as exc:
        raise ExportError(
            f"checkpoint {source} does not fit a {arch.name} with head {head.describe()}: {exc}"
        ) from None
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
            f"checkpoint {path} holds a dict whose entries {some(not_tensors)} are not tensors "
            f"and no {' or '.join(repr(k) for k in STATE_DICT_KEYS)} entry; expected a state_dict"
        )
    return {_strip_parallel(str(k)): v for k, v in loaded.items()}


def _strip_parallel(key: str) -> str:
    return key.removeprefix(PARALLEL_PREFIX)


def _check_backbone(state_dict: dict[str, torch.Tensor], arch: Architecture, source: str) -> None:
    """Compare every non-head key with torchvision's network; fill absent BN counters."""
    # Older checkpoints lack BatchNorm's num_batches_tracked; it does not affect eval output.
    for key in arch.backbone_shapes().keys() - state_dict.keys():
        if key.endswith(BATCHES_TRACKED):
            state_dict[key] = torch.tensor(0, dtype=torch.long)
    problems = backbone_mismatch(arch, state_dict)
    if problems:
        raise ExportError(
            f"checkpoint {source} does not match torchvision's {arch.name} backbone: "
            + "; ".join(problems)
            + f". Export needs a state_dict of torchvision.models.{arch.name} with a Linear or Sequential "
            f"{arch.head} head"
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
