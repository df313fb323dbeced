"""The farm launcher: start Ollama backends (container, process, simulator or external), pull and
warm the model, and front them with the proxy (`python -m farm up|down|status|logs`)."""
