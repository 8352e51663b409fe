/**
 * Refusals that happen before a route runs (issue 7: hostile requests) come in the envelope of the API the client
 * called: Anthropic's under /v1/messages, OpenAI's elsewhere. The server is wired as main.ts wires it (the
 * options and the clientError listener), on a loopback port.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { after, before, test } from 'node:test';
import { rawRequest, type RawResponse } from '../../test/support/raw-http.ts';
import { createLogger } from '../log.ts';
import { createApp } from './app.ts';
import { createCredentialResolver } from './credentials.ts';
import { clientApiRoutes } from './routes/client-api-routes.ts';
import { createScriptedChat } from './routes/route-test-kit.ts';
import { answerClientError, serverOptions } from './server-options.ts';

const requestTimeoutMs = 300;
let server: Server;
let url: string;

before(async () => {
  const sink = new Writable({ write: (_chunk, _encoding, done) => done() });
  const chat = createScriptedChat(() => ({ text: 'hi' }));
  const credentials = createCredentialResolver({ apiKeys: [], hasServerPool: false });
  const app = createApp({ routes: clientApiRoutes({ chat, credentials, bodyLimitBytes: 1_000_000 }), log: createLogger({ level: 'error', destination: sink }), corsOrigins: [] });
  server = createServer(serverOptions(requestTimeoutMs), app.handle);
  server.on('clientError', answerClientError);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => new Promise<void>((resolve) => {
  server.closeAllConnections();
  server.close(() => resolve());
}));

const headers = { 'content-type': 'application/json', 'x-api-key': 'kimi-token' };

function json(reply: RawResponse): { type?: string; error: { type: string; code: string; message: string; param?: string | null } } {
  return JSON.parse(reply.body.toString('utf8'));
}

function assertAnthropic(reply: RawResponse, status: number, type: string, code: string): void {
  assert.equal(reply.status, status);
  const body = json(reply);
  assert.equal(body.type, 'error', reply.body.toString('utf8'));
  assert.equal(body.error.type, type);
  assert.equal(body.error.code, code);
  assert.equal('param' in body.error, false, "Anthropic's envelope has no param");
}

function assertOpenAi(reply: RawResponse, status: number, code: string): void {
  assert.equal(reply.status, status);
  const body = json(reply);
  assert.equal(body.type, undefined, reply.body.toString('utf8'));
  assert.equal(body.error.code, code);
  assert.equal(body.error.param, null);
}

test(`a body that stops arriving on /v1/messages: 408 request_timeout in Anthropic's envelope (REQUEST_TIMEOUT_MS ${requestTimeoutMs})`, async () => {
  const reply = await rawRequest(url, { path: '/v1/messages', headers: { ...headers, 'content-length': '500' }, body: '{"model":' }).response;
  assertAnthropic(reply, 408, 'invalid_request_error', 'request_timeout');
  const countTokens = await rawRequest(url, { path: '/v1//messages/count_tokens?beta=true', headers: { ...headers, 'content-length': '500' }, body: '{' }).response;
  assertAnthropic(countTokens, 408, 'invalid_request_error', 'request_timeout');
});

test('a body that stops arriving elsewhere keeps the OpenAI envelope', async () => {
  const reply = await rawRequest(url, { path: '/v1/responses', headers: { ...headers, 'content-length': '500' }, body: '{"model":' }).response;
  assertOpenAi(reply, 408, 'request_timeout');
});

test("headers over 64 KiB on /v1/messages: 431 headers_too_large in Anthropic's envelope", async () => {
  const reply = await rawRequest(url, { path: '/v1/messages', headers: { ...headers, 'x-padding': 'p'.repeat(70 * 1024) }, body: '{}' }).response;
  assertAnthropic(reply, 431, 'invalid_request_error', 'headers_too_large');
});

test('headers over 64 KiB elsewhere: 431 in the OpenAI envelope; just under the limit passes to the route', async () => {
  const reply = await rawRequest(url, { path: '/v1/responses', headers: { ...headers, 'x-padding': 'p'.repeat(70 * 1024) }, body: '{}' }).response;
  assertOpenAi(reply, 431, 'headers_too_large');
  const under = await rawRequest(url, { path: '/v1/responses', headers: { ...headers, 'x-padding': 'p'.repeat(60 * 1024) }, body: '{}' }).response;
  assert.equal(under.status, 400, 'the route answered (input is missing)');
});

test('headers past what Node parses (128 KiB) are still a 431 envelope, from Node before the path is known', async () => {
  const reply = await rawRequest(url, { path: '/v1/messages', headers: { ...headers, 'x-padding': 'p'.repeat(140 * 1024) }, body: '{}' }).response;
  assert.equal(reply.status, 431);
  assert.equal(json(reply).error.code, 'headers_too_large');
});
