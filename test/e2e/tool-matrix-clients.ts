/**
 * Test support for the tool-calling matrix (issue 9): one turn through each client API with its real SDK,
 * reduced to a comparable outcome (calls, text, finish, error), plus the repair rounds the simulator saw.
 */
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import type { Stack } from '../support/stack.ts';

export type Api = 'chat' | 'responses' | 'anthropic';

export interface TurnInput {
  prompt: string;
  tools: { name: string; description: string; parameters: Record<string, unknown> }[];
  choice?: 'auto' | 'required' | { name: string };
  parallel?: boolean;
}

export interface TurnOutcome {
  calls: { name: string; arguments: unknown }[];
  text: string;
  finish: 'tool-calls' | 'stop' | 'other';
  error?: { status?: number; code?: string };
  /** Repair prompts the simulator received during this turn. */
  repairs: number;
}

export async function runTurn(stack: Stack, api: Api, stream: boolean, input: TurnInput): Promise<TurnOutcome> {
  const before = stack.simulator.requests.length;
  let outcome: Omit<TurnOutcome, 'repairs'>;
  try {
    outcome = api === 'chat' ? await viaChat(stack, stream, input) : api === 'responses' ? await viaResponses(stack, stream, input) : await viaAnthropic(stack, stream, input);
  } catch (error) {
    outcome = { calls: [], text: '', finish: 'other', error: describeError(error) };
  }
  const repairs = stack.simulator.requests.slice(before).filter((request) => request.bodyText?.includes('Your previous answer could not be used')).length;
  return { ...outcome, repairs };
}

function describeError(error: unknown): TurnOutcome['error'] {
  const value = error as { status?: number; code?: string; error?: { code?: string; error?: { code?: string } } };
  return { status: value.status, code: value.code ?? value.error?.code ?? value.error?.error?.code };
}

async function viaChat(stack: Stack, stream: boolean, input: TurnInput): Promise<Omit<TurnOutcome, 'repairs'>> {
  const client = new OpenAI({ baseURL: `${stack.gatewayUrl}/v1`, apiKey: stack.token, maxRetries: 0 });
  const choice = input.choice === undefined || typeof input.choice === 'string' ? input.choice : { type: 'function' as const, function: { name: input.choice.name } };
  const body = {
    model: 'kimi',
    messages: [{ role: 'user' as const, content: input.prompt }],
    tools: input.tools.map((tool) => ({ type: 'function' as const, function: tool })),
    ...(choice ? { tool_choice: choice } : {}),
    ...(input.parallel === false ? { parallel_tool_calls: false } : {}),
  };
  const completion = stream ? await client.chat.completions.stream(body).finalChatCompletion() : await client.chat.completions.create(body);
  const message = completion.choices[0].message;
  const calls = (message.tool_calls ?? []).flatMap((call) => (call.type === 'function' ? [{ name: call.function.name, arguments: JSON.parse(call.function.arguments) }] : []));
  const reason = completion.choices[0].finish_reason;
  return { calls, text: message.content ?? '', finish: reason === 'tool_calls' ? 'tool-calls' : reason === 'stop' ? 'stop' : 'other' };
}

async function viaResponses(stack: Stack, stream: boolean, input: TurnInput): Promise<Omit<TurnOutcome, 'repairs'>> {
  const client = new OpenAI({ baseURL: `${stack.gatewayUrl}/v1`, apiKey: stack.token, maxRetries: 0 });
  const choice = input.choice === undefined || typeof input.choice === 'string' ? input.choice : { type: 'function' as const, name: input.choice.name };
  const body = {
    model: 'kimi',
    input: input.prompt,
    tools: input.tools.map((tool) => ({ type: 'function' as const, strict: false, ...tool })),
    ...(choice ? { tool_choice: choice } : {}),
    ...(input.parallel === false ? { parallel_tool_calls: false } : {}),
  };
  const response = stream ? await client.responses.stream(body).finalResponse() : await client.responses.create(body);
  const calls = response.output.flatMap((item) => (item.type === 'function_call' ? [{ name: item.name, arguments: JSON.parse(item.arguments) }] : []));
  return { calls, text: response.output_text, finish: response.status !== 'completed' ? 'other' : calls.length > 0 ? 'tool-calls' : 'stop' };
}

async function viaAnthropic(stack: Stack, stream: boolean, input: TurnInput): Promise<Omit<TurnOutcome, 'repairs'>> {
  const client = new Anthropic({ baseURL: stack.gatewayUrl, apiKey: stack.token, maxRetries: 0 });
  const choice = input.choice === undefined ? undefined : input.choice === 'auto' ? { type: 'auto' as const } : input.choice === 'required' ? { type: 'any' as const } : { type: 'tool' as const, name: input.choice.name };
  const body = {
    model: 'kimi',
    max_tokens: 1024,
    messages: [{ role: 'user' as const, content: input.prompt }],
    tools: input.tools.map((tool) => ({ name: tool.name, description: tool.description, input_schema: { type: 'object' as const, ...tool.parameters } })),
    // Anthropic spells "no parallel calls" inside tool_choice.
    ...(choice || input.parallel === false ? { tool_choice: { ...(choice ?? { type: 'auto' as const }), ...(input.parallel === false ? { disable_parallel_tool_use: true } : {}) } } : {}),
  };
  const message = stream ? await client.messages.stream(body).finalMessage() : await client.messages.create(body);
  const calls = message.content.flatMap((block) => (block.type === 'tool_use' ? [{ name: block.name, arguments: block.input }] : []));
  const text = message.content.flatMap((block) => (block.type === 'text' ? [block.text] : [])).join('');
  return { calls, text, finish: message.stop_reason === 'tool_use' ? 'tool-calls' : message.stop_reason === 'end_turn' ? 'stop' : 'other' };
}
