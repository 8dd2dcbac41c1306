// The Vercel AI SDK (`ai` + `@ai-sdk/openai`) against the gateway, run by tests/e2e/test_ai_sdk.py.
//
// `createOpenAI({ baseURL: <gateway>/api/ai/v1 })` and the provider's default factory, `openai(model)`,
// which speaks the Responses API (POST /responses). Each check records what the SDK returned (or the
// error it threw, with the SDK's own error fields) under its name; the script prints one JSON object.
//
// Environment: GATEWAY_URL, USER_JWT, CHAT_MODEL, DISABLED_MODEL.

import { createOpenAI } from '@ai-sdk/openai';
import { generateText, jsonSchema, Output, stepCountIs, streamText, tool } from 'ai';

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`missing env ${name}`);
  return value;
};
const CHAT = env('CHAT_MODEL');
const DISABLED = env('DISABLED_MODEL');
const openai = createOpenAI({ baseURL: `${env('GATEWAY_URL')}/api/ai/v1`, apiKey: env('USER_JWT') });

const weatherTool = tool({
  description: 'Weather by city',
  inputSchema: jsonSchema({
    type: 'object',
    properties: { city: { type: 'string' } },
    required: ['city'],
    additionalProperties: false,
  }),
  execute: async ({ city }) => `Sunny in ${city}, 21C`,
});

const results = {};

async function check(name, fn) {
  try {
    results[name] = await fn();
  } catch (err) {
    results[name] = {
      threw: true,
      name: err?.constructor?.name ?? typeof err,
      message: err?.message ?? String(err),
      statusCode: err?.statusCode,
      responseBody: err?.responseBody,
    };
  }
}

const usageOf = (u) => ({ inputTokens: u.inputTokens, outputTokens: u.outputTokens, totalTokens: u.totalTokens });

await check('generate_text', async () => {
  const res = await generateText({ model: openai(CHAT), prompt: 'Count to five', maxRetries: 0 });
  return {
    text: res.text,
    finishReason: res.finishReason,
    usage: usageOf(res.usage),
    responseId: res.response.id,
    modelId: res.response.modelId,
    warnings: res.warnings ?? [],
  };
});

await check('stream_text', async () => {
  const res = streamText({ model: openai(CHAT), prompt: 'Count to five', maxRetries: 0 });
  const deltas = [];
  for await (const delta of res.textStream) deltas.push(delta);
  return { deltas, text: await res.text, finishReason: await res.finishReason, usage: usageOf(await res.usage) };
});

await check('generate_text_tools', async () => {
  const res = await generateText({
    model: openai(CHAT),
    prompt: 'Weather in Paris?',
    tools: { get_weather: weatherTool },
    stopWhen: stepCountIs(3),
    maxRetries: 0,
  });
  return {
    steps: res.steps.length,
    toolCalls: res.steps.flatMap((s) => s.toolCalls.map((c) => ({ name: c.toolName, input: c.input }))),
    toolResults: res.steps.flatMap((s) => s.toolResults.map((r) => r.output)),
    text: res.text,
    finishReason: res.finishReason,
  };
});

await check('stream_text_tools', async () => {
  const res = streamText({
    model: openai(CHAT),
    prompt: 'Weather in Paris?',
    tools: { get_weather: weatherTool },
    stopWhen: stepCountIs(3),
    maxRetries: 0,
  });
  const parts = [];
  for await (const part of res.fullStream) parts.push(part.type);
  const steps = await res.steps;
  return {
    parts: [...new Set(parts)],
    steps: steps.length,
    toolCalls: steps.flatMap((s) => s.toolCalls.map((c) => ({ name: c.toolName, input: c.input }))),
    text: await res.text,
  };
});

await check('structured_output', async () => {
  const res = await generateText({
    model: openai(CHAT),
    prompt: 'Weather in Paris as JSON',
    output: Output.object({
      schema: jsonSchema({
        type: 'object',
        properties: { city: { type: 'string' }, temperature_c: { type: 'integer' } },
        required: ['city', 'temperature_c'],
        additionalProperties: false,
      }),
    }),
    maxRetries: 0,
  });
  return { output: res.output };
});

// A second turn that replays the first answer. By default the SDK assumes the server stored it and
// sends an `item_reference` to the earlier message (refused: nothing is stored); with
// providerOptions.openai.store = false it sends the message itself.
async function secondTurn(providerOptions) {
  const prompt = [{ role: 'user', content: 'Hello there' }];
  const first = await generateText({ model: openai(CHAT), messages: prompt, providerOptions, maxRetries: 0 });
  const messages = [...prompt, ...first.response.messages, { role: 'user', content: 'And once more' }];
  const second = await generateText({ model: openai(CHAT), messages, providerOptions, maxRetries: 0 });
  return { first: first.text, text: second.text };
}

await check('second_turn_default', () => secondTurn(undefined));
await check('second_turn_store_false', () => secondTurn({ openai: { store: false } }));

await check('not_enabled', () => generateText({ model: openai(DISABLED), prompt: 'Hi', maxRetries: 0 }));

process.stdout.write(JSON.stringify(results));
