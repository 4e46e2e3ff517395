"""Checkpoints are directories: ``config.json`` (instance, network shape, training settings, versions)
and ``weights.safetensors``. Nothing is unpickled."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import tempfile
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from engine.sequoia.armwise_network import ArmwiseQNetwork
from engine.sequoia.q_network import QNetwork

FORMAT_VERSION = 1


def weights_digest(*nets: torch.nn.Module) -> str:
    """A short content hash of the weights of ``nets`` (in order): the policy version."""
    h = hashlib.sha256()
    for net in nets:
        for name, tensor in sorted(net.state_dict().items()):
            h.update(name.encode())
            h.update(tensor.detach().cpu().numpy().tobytes())
    return h.hexdigest()[:12]


def write_checkpoint_dir(path: str | Path, meta: dict, tensors: dict[str, torch.Tensor]) -> Path:
    """Write ``config.json`` (``meta`` + library versions) and ``weights.safetensors`` atomically: a temporary
    directory renamed into place, so a crash never leaves a half-written checkpoint."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        **meta,
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "numpy": np.__version__,
        },
    }
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp / "weights.safetensors"))
    (tmp / "config.json").write_text(json.dumps(meta, indent=2))
    if path.exists():
        old = path.with_name(f".{path.name}.old")
        os.replace(path, old)
        os.replace(tmp, path)
        for f in old.iterdir():
            f.unlink()
        old.rmdir()
    else:
        os.replace(tmp, path)
    return path


def read_checkpoint_meta(path: str | Path) -> dict:
    """The parsed ``config.json`` of checkpoint directory ``path`` (checked to hold the weights file too)."""
    path = Path(path)
    config_file, weights_file = path / "config.json", path / "weights.safetensors"
    if not config_file.is_file() or not weights_file.is_file():
        raise FileNotFoundError(f"{path} is not a checkpoint directory (config.json + weights.safetensors)")
    return json.loads(config_file.read_text())


def save_checkpoint(path: str | Path, net: QNetwork | ArmwiseQNetwork, config: dict) -> Path:
    """A Q-network checkpoint: ``config`` plus the network shape, format and policy versions."""
    shape = (
        net.shape()
        if isinstance(net, ArmwiseQNetwork)
        else {
            "n_actions": net.n_actions,
            "state_dim": net.state_dim,
            "hidden": list(net.hidden),
            "context_dim": net.context_dim,
        }
    )
    meta = {
        **config,
        "format_version": FORMAT_VERSION,
        "network": shape,
        "policy_version": weights_digest(net),
    }
    return write_checkpoint_dir(path, meta, net.state_dict())


def load_checkpoint(path: str | Path) -> tuple[QNetwork | ArmwiseQNetwork, dict]:
    meta = read_checkpoint_meta(path)
    weights_file = Path(path) / "weights.safetensors"
    shape = meta["network"]
    net: QNetwork | ArmwiseQNetwork
    if shape.get("kind") == ArmwiseQNetwork.kind:
        net = ArmwiseQNetwork(
            int(shape["n_actions"]),
            int(shape["context_dim"]),
            tuple(int(w) for w in shape["hidden"]),
            int(shape["pooled_dim"]),
            tuple(int(w) for w in shape["head_hidden"]),
        )
    else:
        net = QNetwork(
            int(shape["n_actions"]),
            int(shape["state_dim"]),
            tuple(int(w) for w in shape["hidden"]),
            int(shape.get("context_dim", 0)),
        )
    net.load_state_dict(load_file(str(weights_file)))
    net.eval()
    return net, meta
