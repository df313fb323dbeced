"""ollama-farm: run one warm Ollama and front it (sim, proxy, launch and gpu rooms)."""
