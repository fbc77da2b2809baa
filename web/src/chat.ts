/** `vlm.chat.completions.create(...)`, in the shape of OpenAI's chat completions API. */
import type { ChatMessage, FinishReason, GenerateChunk, SamplingOptions, Usage } from './types.js';

export interface ChatCompletionRequest {
  messages: ChatMessage[];
  stream?: boolean;
  max_tokens?: number;
  max_completion_tokens?: number;
  temperature?: number;
  top_p?: number;
  seed?: number;
  signal?: AbortSignal;
}

export interface ChatCompletionChunk {
  id: string;
  object: 'chat.completion.chunk';
  created: number;
  model: string;
  choices: Array<{ index: 0; delta: { role?: 'assistant'; content?: string }; finish_reason: FinishReason | null }>;
  usage?: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
}

export interface ChatCompletion {
  id: string;
  object: 'chat.completion';
  created: number;
  model: string;
  choices: Array<{ index: 0; message: { role: 'assistant'; content: string }; finish_reason: FinishReason | null }>;
  usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
}

export interface Completions {
  create(req: ChatCompletionRequest & { stream: true }): Promise<AsyncIterable<ChatCompletionChunk>>;
  create(req: ChatCompletionRequest & { stream?: false }): Promise<ChatCompletion>;
}

interface Generates {
  readonly info: { url: string };
  generateChat(messages: ChatMessage[], options: SamplingOptions): AsyncIterable<GenerateChunk>;
}

function usageOf(u?: Usage) {
  const prompt = u?.promptTokens ?? 0;
  const completion = u?.completionTokens ?? 0;
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
}

export function createCompletions(vlm: Generates): Completions {
  const options = (r: ChatCompletionRequest): SamplingOptions => ({
    maxTokens: r.max_completion_tokens ?? r.max_tokens,
    temperature: r.temperature,
    topP: r.top_p,
    seed: r.seed,
    signal: r.signal,
  });
  async function* chunks(r: ChatCompletionRequest, id: string, created: number): AsyncGenerator<ChatCompletionChunk> {
    let first = true;
    for await (const c of vlm.generateChat(r.messages, options(r))) {
      const delta: { role?: 'assistant'; content?: string } = first ? { role: 'assistant' } : {};
      first = false;
      if (c.text) delta.content = c.text;
      const out: ChatCompletionChunk = {
        id, object: 'chat.completion.chunk', created, model: vlm.info.url,
        choices: [{ index: 0, delta, finish_reason: c.done ? (c.finishReason ?? 'stop') : null }],
      };
      if (c.done) out.usage = usageOf(c.usage);
      yield out;
    }
  }
  const create = async (r: ChatCompletionRequest): Promise<AsyncIterable<ChatCompletionChunk> | ChatCompletion> => {
    const id = `chatcmpl-${crypto.randomUUID()}`;
    const created = Math.floor(Date.now() / 1000);
    if (r.stream) return chunks(r, id, created);
    let content = '';
    let finish: FinishReason | null = null;
    let usage;
    for await (const c of chunks(r, id, created)) {
      content += c.choices[0].delta.content ?? '';
      finish = c.choices[0].finish_reason;
      usage = c.usage;
    }
    return {
      id, object: 'chat.completion', created, model: vlm.info.url,
      choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: finish }],
      usage: usage ?? usageOf(),
    };
  };
  return { create: create as Completions['create'] };
}
