// GET /v1/doctor (issue 10): gateway key required when set, JSON report, optional redacted fixtures, one run at a time.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PassThrough } from 'node:stream';
import { request } from 'undici';
import { startSimulator, type Simulator } from '../../simulator/simulator.ts';
import { createApp } from '../http/app.ts';
import { createCredentialResolver } from '../http/credentials.ts';
import { createLogger } from '../log.ts';
import { doctorRoute } from './doctor-route.ts';
import { runDoctor } from './run-doctor.ts';

let simulator: Simulator;
let server: Server;
let baseUrl: string;
let runs = 0;

before(async () => {
  simulator = await startSimulator();
  const account = simulator.issueAccount();
  const credentials = createCredentialResolver({ apiKeys: ['gateway-key'], hasServerPool: true });
  const route = doctorRoute({
    requireGatewayKey: credentials.requireGatewayKey,
    runDoctor: ({ signal, record }) => {
      runs += 1;
      return runDoctor({ accounts: [account.refreshToken], baseUrl: simulator.url, authUrl: simulator.url, legacyBaseUrl: simulator.url, dialectMode: 'auto', signal, record });
    },
  });
  const app = createApp({ routes: [{ method: 'GET', path: '/v1/doctor', handler: route }], log: createLogger({ level: 'silent', destination: new PassThrough() }), corsOrigins: [] });
  server = createServer(app.handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  await new Promise((resolve) => server.close(resolve));
  await simulator.close();
});

async function get(path: string, key?: string): Promise<{ status: number; json: Record<string, unknown>; text: string }> {
  const response = await request(`${baseUrl}${path}`, { headers: key ? { authorization: `Bearer ${key}` } : {} });
  const text = await response.body.text();
  return { status: response.statusCode, json: JSON.parse(text) as Record<string, unknown>, text };
}

test('without the gateway key: 401 invalid_api_key and no doctor run', async () => {
  const before = runs;
  const answer = await get('/v1/doctor');
  assert.equal(answer.status, 401);
  assert.equal((answer.json.error as { code: string }).code, 'invalid_api_key');
  assert.equal(runs, before);
});

test('with the key: the JSON report, one row per step', async () => {
  const answer = await get('/v1/doctor', 'gateway-key');
  assert.equal(answer.status, 200);
  assert.equal(answer.json.ok, true);
  const rows = answer.json.rows as { step: string; result: string; ms: number; detail: string }[];
  assert.deepEqual(rows.map((row) => row.step), ['dns', 'connect', 'clock', 'refresh', 'current-user', 'models', 'chat', 'delete-chat']);
  assert.ok(rows.every((row) => row.result === 'ok' && typeof row.ms === 'number' && row.detail));
  assert.equal(answer.json.fixtures, undefined);
});

test('?fixtures=1 adds the redacted exchange; concurrent requests share one run', async () => {
  const before = runs;
  const [first, second] = await Promise.all([get('/v1/doctor?fixtures=1', 'gateway-key'), get('/v1/doctor?fixtures=1', 'gateway-key')]);
  assert.equal(runs, before + 1);
  assert.deepEqual(first.json, second.json);
  const fixtures = first.json.fixtures as { step: string }[];
  assert.ok(fixtures.some((fixture) => fixture.step === 'chat'));
  assert.ok(!first.text.includes('eyJ'));
});
