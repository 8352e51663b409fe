/**
 * @module test/support/openai-stack
 * One stack and an `openai` client on it for a whole test file: registers the before/after hooks and hands back
 * getters (the values exist only once `before` has run).
 */
import { after, before } from 'node:test';
import OpenAI from 'openai';
import { startStack, type Stack, type StackOptions } from './stack.ts';

export function useOpenAiStack(options: StackOptions = {}): { stack: () => Stack; client: () => OpenAI } {
  let stack: Stack | undefined;
  let client: OpenAI | undefined;
  before(async () => {
    stack = await startStack(options);
    client = new OpenAI({ baseURL: `${stack.gatewayUrl}/v1`, apiKey: stack.token, maxRetries: 0 });
  });
  after(() => stack?.close());
  return { stack: () => stack!, client: () => client! };
}
