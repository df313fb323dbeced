"""The llama.cpp engine: real weights (Gemma 3 270M base, Q4_K_M) on llama.cpp, on the CPU.

Python side: `weights` (the GGUF, assembled once per machine and checked), `gguf` (its
metadata for `/api/show`), `template` (the plain chat template), `listing` (the model's entry
in the store), `protocol` (the worker's typed lines), `process` and `worker_link` (the
supervised Node worker) and `engine` (the `Engine`). Node side, in this folder: `worker.js`
on `node-llama-cpp`, pinned in `package.json` / `package-lock.json`
(`npm ci --omit=optional --prefix farm/sim/engines/llamacpp`).
"""
