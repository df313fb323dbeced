// The run's controls, read and checked: every problem as one sentence naming the bad value.

const STREAMS_MIN = 1;
const STREAMS_MAX = 32;
const MAX_TOKENS_MAX = 8192;

// `knownModels`: the listed model names (a Set), or null with `modelsError` saying why not.
export function readInputs(ui, knownModels, modelsError) {
  const problems = [];
  const streamsRaw = ui.streams.value.trim();
  const streams = Number(streamsRaw);
  if (!Number.isInteger(streams) || streams < STREAMS_MIN || streams > STREAMS_MAX || streamsRaw === "") {
    problems.push(`Parallel streams must be a whole number from ${STREAMS_MIN} to ${STREAMS_MAX} (got "${streamsRaw}").`);
  }
  const maxRaw = ui.maxTokens.value.trim();
  const maxTokens = Number(maxRaw);
  if (!Number.isInteger(maxTokens) || maxTokens < 1 || maxTokens > MAX_TOKENS_MAX || maxRaw === "") {
    problems.push(`Max tokens must be a whole number from 1 to ${MAX_TOKENS_MAX} (got "${maxRaw}").`);
  }
  const prompt = ui.prompt.value;
  if (!prompt.trim()) problems.push("The prompt is empty: type one or pick a preset.");
  const model = ui.model.value.trim();
  if (!model) problems.push("Choose a model.");
  else if (knownModels === null) problems.push(`Cannot check model "${model}": ${modelsError}`);
  else if (!knownModels.has(model) && !knownModels.has(`${model}:latest`)) {
    const listed = [...knownModels].join(", ") || "none";
    problems.push(`Unknown model "${model}": the server lists ${listed}.`);
  }
  return { problems, streams, maxTokens, prompt, model };
}
