"""The simulator's memory as clients read it: `model_info` in show, `size`/`size_vram` in ps.

Through the official `ollama` client against a real simulator process: the GGUF keys a KV cache
is sized from, a size that grows with `num_ctx`, and a `--vram-mib` GPU that holds the first
loaded model whole and only the rest of its memory for the next, as Ollama's partial offload
reports it.
"""

from __future__ import annotations

import ollama

from farm.sim.child import SimServer


def gemma_kv(ctx: int) -> int:
    """f16, 4 KV heads of 256 + 256: 5 global layers keep `ctx` tokens, 29 local ones 1024."""
    return 2 * 4 * 512 * (5 * ctx + 29 * min(ctx, 1024))


def test_show_ps_and_a_small_simulated_gpu() -> None:
    env = {"FARM_SIM_LOAD_MS": "10", "FARM_SIM_PULL_MS": "10"}
    with SimServer(env=env, vram_mib=3584) as sim, ollama.Client(host=sim.url) as client:
        assert (
            'msg="inference compute" id=GPU-00000000-0000-4000-8000-0000000051a1 library=cuda '
            'name="ollama-farm simulated GPU" total="3.5 GiB" available="3.5 GiB"'
        ) in sim.output()
        info = client.show("gemma3:4b").modelinfo or {}
        assert info["general.architecture"] == "gemma3"
        assert info["gemma3.block_count"] == 34 and info["gemma3.attention.head_count_kv"] == 4
        assert info["gemma3.attention.key_length"] == info["gemma3.attention.value_length"] == 256
        assert info["gemma3.context_length"] == 131072
        assert list(info) == sorted(info)  # a Go map: keys sorted

        client.pull("qwen3:0.6b")
        client.generate("gemma3:4b", "hi", options={"num_ctx": 2048, "num_predict": 1})
        client.generate("qwen3:0.6b", "hi", options={"num_ctx": 2048, "num_predict": 1})
        loaded = {m.model: m for m in client.ps().models}
        gemma, qwen = loaded["gemma3:4b"], loaded["qwen3:0.6b"]
        listed = {m.model: m.size for m in client.list().models}
        assert gemma.size == listed["gemma3:4b"] + gemma_kv(2048)
        assert gemma.size_vram == gemma.size  # loaded first: whole on the GPU
        assert qwen.size is not None and qwen.size_vram is not None
        assert qwen.size == listed["qwen3:0.6b"] + 2 * 8 * 256 * 28 * 2048
        assert qwen.size_vram == 3584 * 2**20 - gemma.size < qwen.size  # the rest: on the CPU


def test_without_a_vram_size_everything_is_on_the_gpu_and_no_gpu_line_is_logged() -> None:
    with SimServer(env={"FARM_SIM_LOAD_MS": "10"}) as sim, ollama.Client(host=sim.url) as client:
        client.generate("gemma3:4b", "hi", options={"num_ctx": 4096, "num_predict": 1})
        (model,) = client.ps().models
        (listed,) = client.list().models
        assert model.size == model.size_vram == (listed.size or 0) + gemma_kv(4096)
        assert "inference compute" not in sim.output()
