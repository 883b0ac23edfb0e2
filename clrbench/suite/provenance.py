"""Where a run was trained: package versions, CPU, threads, data checksums, git commit."""

from __future__ import annotations

import os
import platform
from typing import Any

from clrbench.environment import cpu_model, git_commit, package_version

PACKAGES = ("clrbench", "tensorflow", "keras", "numpy", "pandas", "pyarrow", "joblib")


def provenance(info: dict[str, Any]) -> dict[str, Any]:
    """Flat provenance of this process: versions, CPU, threads, data checksums, git commit."""
    threads = info.get("threads", {})
    checksums = info.get("dataset_checksums", {})
    record: dict[str, Any] = {f"{name}_version": package_version(name) for name in PACKAGES}
    record |= {
        "python_version": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "intra_op_threads": threads.get("intra_op"),
        "inter_op_threads": threads.get("inter_op"),
        "dataset_md5": " ".join(f"{k}:{v}" for k, v in sorted(checksums.items())) or None,
        "data_source": info.get("data_source"),
        "test_examples": info.get("test_examples"),
        "evaluated_on": info.get("evaluated_on"),
        "split_sha256": (info.get("split") or {}).get("validation_sha256"),
        "device": info.get("device"),  # what trained it: "CPU" or the GPU's name
        "git_commit": git_commit(),
        "hostname": platform.node(),
    }
    stack = info.get("stack")
    if stack is not None:  # a stacked member: with how many it trained (its seconds a share)
        record |= {
            "stack_size": stack["size"],
            "stack_member": stack["member"],
            "stack_wall_s": stack["wall_s"],
            "stack_split": stack.get("split"),
        }
    return record
