"""Loaded at start-up by a child Python whose PYTHONPATH names this folder: fake NVML there."""

import os

if os.environ.get("FAKE_NVML"):
    import fake_nvml

    fake_nvml.install()
