"""GPU host setup: make Docker hand NVIDIA GPUs to containers (`invoke gpu-setup`)."""
