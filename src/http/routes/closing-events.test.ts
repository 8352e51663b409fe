// The closing events of a streamed answer (Responses' response.completed, Anthropic's message_stop, chat
// completions' [DONE]) leave only once the chat service's stream has ended, after it recorded and released the chat:
// a client that sends its next turn on them must not find the chat busy (409 conversation_busy).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { request } from 'undici';
import { chatCompletionsRoute } from './chat-completions.ts';
import { clientApiRoutes } from './client-api-routes.ts';
import { createScriptedChat, startRouteServer, type RouteServer } from './route-test-kit.ts';

let release: () => void = () => undefined;
let released = Promise.resolve();
const chat = createScriptedChat(() => ({ text: 'Hello there.', beforeEnd: released }));
let server: RouteServer;

before(async () => {
  server = await startRouteServer((deps) => [{ method: 'POST', path: '/v1/chat/completions', handler: chatCompletionsRoute(deps) }, ...clientApiRoutes(deps)], chat);
});
after(() => server.close());

const apis = [
  { name: 'responses', path: '/v1/responses', body: { model: 'kimi', input: 'Hi', stream: true }, closing: 'response.completed' },
  { name: 'anthropic messages', path: '/v1/messages', body: { model: 'claude-sonnet-4-5', max_tokens: 64, messages: [{ role: 'user', content: 'Hi' }], stream: true }, closing: 'message_stop' },
  { name: 'chat completions', path: '/v1/chat/completions', body: { model: 'kimi', messages: [{ role: 'user', content: 'Hi' }], stream: true }, closing: '[DONE]' },
];

for (const api of apis) {
  test(`${api.name}: the closing event (${api.closing}) waits until the chat service's stream has ended`, async () => {
    released = new Promise<void>((resolve) => (release = resolve));
    const response = await request(`${server.url}${api.path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer kimi-token', 'anthropic-version': '2023-06-01' },
      body: JSON.stringify(api.body),
    });
    assert.equal(response.statusCode, 200);
    let received = '';
    const reader = response.body[Symbol.asyncIterator]();
    while (!received.includes('here.')) received += String((await reader.next()).value ?? '');
    // The finish event has been handed on by now; give anything it produced time to arrive.
    await new Promise((resolve) => setTimeout(resolve, 100));
    const racer = reader.next();
    const early = await Promise.race([racer.then((step) => String(step.value ?? '')), new Promise<undefined>((resolve) => setTimeout(resolve, 50, undefined))]);
    assert.ok(!(received + (early ?? '')).includes(api.closing), `${api.closing} arrived before the stream ended`);
    release();
    received += early ?? String((await racer).value ?? '');
    for (let step = await reader.next(); !step.done; step = await reader.next()) received += String(step.value);
    assert.ok(received.includes(api.closing), `${api.closing} arrives once the stream has ended`);
  });
}
