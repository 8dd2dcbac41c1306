// End-to-end checks of the gateway with the official clients, run by tests/e2e/test_sdk.py.
//
// Uses, unchanged: @insforge/sdk 1.5.2 (createClient / createAdminClient), @insforge/sdk 1.2.4
// (installed under the alias `insforge-sdk-12`) and the `openai` npm package pointed at /api/ai/v1.
// Every check records what the client returned (or the error it threw, with the client's own error
// fields) under its name; the script prints one JSON object and the pytest side asserts on it.
//
// Environment: GATEWAY_URL, USER_JWT, EXPIRED_JWT, LIMITED_JWT, ADMIN_KEY, CHAT_MODEL, IMAGE_MODEL,
// EMBED_MODEL, DISABLED_MODEL.

import { createAdminClient, createClient, InsForgeError } from '@insforge/sdk';
import { createClient as createClient12 } from 'insforge-sdk-12';
import OpenAI from 'openai';

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`missing env ${name}`);
  return value;
};
const baseUrl = env('GATEWAY_URL');
const CHAT = env('CHAT_MODEL');
const IMAGE = env('IMAGE_MODEL');
const EMBED = env('EMBED_MODEL');
const DISABLED = env('DISABLED_MODEL');
const TOOLS = [
  {
    type: 'function',
    function: {
      name: 'get_weather',
      description: 'Weather by city',
      parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
    },
  },
];
const PNG_SIGNATURE = '89504e470d0a1a0a';

const results = {};

// An error as the client surfaced it: its class and the SDK's own error fields.
function describe(err) {
  return {
    threw: true,
    name: err?.constructor?.name ?? typeof err,
    isInsForgeError: err instanceof InsForgeError,
    message: err?.message ?? String(err),
    error: err?.error,
    statusCode: err?.statusCode,
    status: err?.status,
    code: err?.code,
    type: err?.type,
    nextActions: err?.nextActions,
  };
}

async function check(name, fn) {
  const started = Date.now();
  try {
    results[name] = { ...(await fn()), ms: Date.now() - started };
  } catch (err) {
    results[name] = { ...describe(err), ms: Date.now() - started };
  }
}

async function collect(stream) {
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  return chunks;
}

function streamSummary(chunks) {
  const choices = chunks.map((c) => c.choices?.[0]).filter(Boolean);
  return {
    count: chunks.length,
    objects: [...new Set(chunks.map((c) => c.object))],
    contents: choices.map((c) => c.delta?.content).filter((t) => typeof t === 'string' && t.length > 0),
    finishReasons: choices.map((c) => c.finish_reason).filter(Boolean),
    toolCalls: choices.flatMap((c) => c.delta?.tool_calls ?? []),
  };
}

const user = createClient({ baseUrl, accessToken: env('USER_JWT'), timeout: 20_000 });
const messages = [{ role: 'user', content: 'Count to five, please' }];
const toolMessages = [{ role: 'user', content: 'Weather in Paris?' }];

// -- the gateway's own rate limit (first: the pytest side starts us well inside a minute window) --

const limited = createClient({ baseUrl, accessToken: env('LIMITED_JWT'), timeout: 20_000 });
await check('err_rate_limit_first', async () => {
  const res = await limited.ai.chat.completions.create({ model: CHAT, messages });
  return { content: res.choices[0].message.content };
});
await check('err_rate_limit', () => limited.ai.chat.completions.create({ model: CHAT, messages }));
await check('err_rate_limit_stream', () => limited.ai.chat.completions.create({ model: CHAT, messages, stream: true }));

// -- @insforge/sdk 1.5.2 -----------------------------------------------------------------------

await check('chat_plain', async () => {
  const res = await user.ai.chat.completions.create({ model: CHAT, messages, temperature: 0.2, maxTokens: 200 });
  return {
    object: res.object,
    model: res.model,
    content: res.choices[0].message.content,
    role: res.choices[0].message.role,
    finishReason: res.choices[0].finish_reason,
    usage: res.usage,
  };
});

await check('chat_stream', async () => {
  const stream = await user.ai.chat.completions.create({ model: CHAT, messages, stream: true });
  return streamSummary(await collect(stream));
});

await check('tools_plain', async () => {
  const res = await user.ai.chat.completions.create({
    model: CHAT,
    messages: toolMessages,
    tools: TOOLS,
    toolChoice: 'auto',
  });
  return {
    content: res.choices[0].message.content,
    toolCalls: res.choices[0].message.tool_calls ?? [],
    finishReason: res.choices[0].finish_reason,
  };
});

await check('tools_stream', async () => {
  const stream = await user.ai.chat.completions.create({
    model: CHAT,
    messages: toolMessages,
    tools: TOOLS,
    stream: true,
  });
  return streamSummary(await collect(stream));
});

await check('tool_result_roundtrip', async () => {
  const first = await user.ai.chat.completions.create({ model: CHAT, messages: toolMessages, tools: TOOLS });
  const call = first.choices[0].message.tool_calls[0];
  const res = await user.ai.chat.completions.create({
    model: CHAT,
    messages: [
      ...toolMessages,
      { role: 'assistant', content: null, tool_calls: [call] },
      { role: 'tool', tool_call_id: call.id, content: 'Sunny, 21C' },
    ],
    tools: TOOLS,
  });
  return { content: res.choices[0].message.content };
});

await check('images', async () => {
  const res = await user.ai.images.generate({ model: IMAGE, prompt: 'A watercolor fox' });
  const b64 = res.data[0]?.b64_json ?? '';
  const raw = Buffer.from(b64, 'base64');
  return {
    count: res.data.length,
    b64Length: b64.length,
    isDataUrl: b64.startsWith('data:'),
    roundTrips: raw.toString('base64') === b64,
    signature: raw.subarray(0, 8).toString('hex'),
    isPng: raw.subarray(0, 8).toString('hex') === PNG_SIGNATURE,
    b64: b64.length < 200_000 ? b64 : null,
    content: res.data[0]?.content,
    usage: res.usage,
  };
});

await check('embeddings', async () => {
  const res = await user.ai.embeddings.create({ model: EMBED, input: ['hello', 'world'], dimensions: 16 });
  return {
    object: res.object,
    model: res.model,
    count: res.data.length,
    indexes: res.data.map((d) => d.index),
    dims: res.data.map((d) => d.embedding.length),
    allNumbers: res.data.every((d) => d.embedding.every((x) => typeof x === 'number')),
    usage: res.usage,
  };
});

await check('embeddings_base64', async () => {
  const res = await user.ai.embeddings.create({ model: EMBED, input: 'hello', encoding_format: 'base64', dimensions: 16 });
  const e = res.data[0].embedding;
  return { type: typeof e, floats: typeof e === 'string' ? Buffer.from(e, 'base64').length / 4 : null };
});

await check('admin_embeddings', async () => {
  const admin = createAdminClient({ baseUrl, apiKey: env('ADMIN_KEY') });
  const res = await admin.ai.embeddings.create({ model: EMBED, input: 'admin says hi' });
  return { count: res.data.length, dims: res.data[0].embedding.length, usage: res.usage };
});

await check('admin_chat', async () => {
  const admin = createAdminClient({ baseUrl, apiKey: env('ADMIN_KEY') });
  const res = await admin.ai.chat.completions.create({ model: CHAT, messages });
  return { content: res.choices[0].message.content, usage: res.usage };
});

// -- errors as the SDK surfaces them -----------------------------------------------------------

const anonymous = createClient({ baseUrl, timeout: 20_000 });
const expired = createClient({ baseUrl, accessToken: env('EXPIRED_JWT'), timeout: 20_000 });
const upstream429 = createClient({
  baseUrl,
  accessToken: env('USER_JWT'),
  timeout: 20_000,
  headers: { 'x-sim-fail-status': '429', 'x-sim-retry-after': '0' },
});

await check('err_no_token', () => anonymous.ai.chat.completions.create({ model: CHAT, messages }));
await check('err_no_token_stream', () => anonymous.ai.chat.completions.create({ model: CHAT, messages, stream: true }));
await check('err_expired', () => expired.ai.chat.completions.create({ model: CHAT, messages }));
await check('err_not_enabled', () => user.ai.chat.completions.create({ model: DISABLED, messages }));
await check('err_not_enabled_embeddings', () => user.ai.embeddings.create({ model: DISABLED, input: 'x' }));
await check('err_upstream_429', () => upstream429.ai.chat.completions.create({ model: CHAT, messages }));

// -- @insforge/sdk 1.2.4 (edgeFunctionToken) -----------------------------------------------------

const old = createClient12({ baseUrl, edgeFunctionToken: env('USER_JWT'), timeout: 20_000 });
await check('v12_chat_plain', async () => {
  const res = await old.ai.chat.completions.create({ model: CHAT, messages });
  return { content: res.choices[0].message.content, usage: res.usage };
});
await check('v12_chat_stream', async () => {
  const stream = await old.ai.chat.completions.create({ model: CHAT, messages, stream: true });
  return streamSummary(await collect(stream));
});
await check('v12_embeddings', async () => {
  const res = await old.ai.embeddings.create({ model: EMBED, input: 'hello', dimensions: 16 });
  return { count: res.data.length, dims: res.data[0].embedding.length };
});

// -- the openai npm package against /api/ai/v1 ------------------------------------------------

const oa = new OpenAI({ baseURL: `${baseUrl}/api/ai/v1`, apiKey: env('USER_JWT'), maxRetries: 0, timeout: 20_000 });
await check('openai_plain', async () => {
  const res = await oa.chat.completions.create({ model: CHAT, messages });
  return {
    object: res.object,
    id: res.id,
    model: res.model,
    content: res.choices[0].message.content,
    finishReason: res.choices[0].finish_reason,
    usage: res.usage,
  };
});
await check('openai_stream', async () => {
  const stream = await oa.chat.completions.create({
    model: CHAT,
    messages,
    stream: true,
    stream_options: { include_usage: true },
  });
  const chunks = await collect(stream);
  return { ...streamSummary(chunks), usage: chunks.at(-1)?.usage ?? null, ids: [...new Set(chunks.map((c) => c.id))] };
});
await check('openai_not_enabled', () => oa.chat.completions.create({ model: DISABLED, messages }));

process.stdout.write(JSON.stringify(results));
