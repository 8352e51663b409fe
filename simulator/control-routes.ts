/**
 * @module simulator/control-routes
 * The out-of-process control surface under `/__simulator/` (issue accounts, set scenarios, read state), for
 * users that run the simulator as a child process. These requests are not recorded.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isObject, sendJson } from './http-io.ts';
import { isScenarioName, SCENARIO_NAMES } from './scenarios.ts';
import type { Simulator } from './simulator-types.ts';

export const CONTROL_PREFIX = '/__simulator/';

async function readJson(req: IncomingMessage): Promise<Record<string, unknown> | undefined> {
  const chunks: Buffer[] = [];
  for await (const chunk of req as AsyncIterable<Buffer>) chunks.push(chunk);
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return {};
  try {
    const value: unknown = JSON.parse(text);
    return isObject(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

function summary(simulator: Simulator, userIds: string[], describeScenarios: () => unknown): Record<string, unknown> {
  return {
    url: simulator.url,
    accounts: userIds.length,
    requests: simulator.requests.length,
    activeStreams: simulator.activeStreams(),
    scenarios: describeScenarios(),
    users: userIds.map((userId) => ({
      userId,
      refreshCount: simulator.refreshCount(userId),
      activeStreams: simulator.activeStreams(userId),
      chats: simulator.chats(userId).filter((chat) => !chat.deleted).length,
      deletedChats: simulator.chats(userId).filter((chat) => chat.deleted).length,
      files: simulator.files(userId).length,
    })),
  };
}

export interface ControlDeps {
  simulator: Simulator;
  userIds: () => string[];
  describeScenarios: () => unknown;
}

export async function handleControl(req: IncomingMessage, res: ServerResponse, url: URL, deps: ControlDeps): Promise<void> {
  const { simulator } = deps;
  const route = `${req.method} ${url.pathname.slice(CONTROL_PREFIX.length)}`;
  if (route === 'GET state') return sendJson(res, 200, summary(simulator, deps.userIds(), deps.describeScenarios));
  if (route === 'GET requests') return sendJson(res, 200, { requests: simulator.requests });
  if (route === 'POST reset') {
    simulator.reset();
    return sendJson(res, 200, { ok: true });
  }
  const userMatch = /^GET accounts\/([0-9a-v]{20})$/.exec(route);
  if (userMatch) {
    const userId = userMatch[1];
    if (!deps.userIds().includes(userId)) return sendJson(res, 404, { error: 'unknown account' });
    return sendJson(res, 200, { userId, refreshCount: simulator.refreshCount(userId), activeStreams: simulator.activeStreams(userId), chats: simulator.chats(userId), files: simulator.files(userId) });
  }
  if (req.method !== 'POST' || !['accounts', 'scenario'].includes(url.pathname.slice(CONTROL_PREFIX.length))) {
    return sendJson(res, 404, { error: 'unknown control route', routes: ['POST accounts', 'POST scenario', 'GET state', 'GET requests', 'GET accounts/:userId', 'POST reset'] });
  }
  const body = await readJson(req);
  if (!body) return sendJson(res, 400, { error: 'body must be a JSON object' });
  if (route === 'POST accounts') {
    const region = body.region === 'overseas' ? 'overseas' : 'cn';
    const membership = body.membership === 'paid' ? 'paid' : 'free';
    return sendJson(res, 200, simulator.issueAccount({ region, membership }));
  }
  if (!isScenarioName(body.name)) return sendJson(res, 400, { error: 'unknown scenario', scenarios: SCENARIO_NAMES });
  const userId = typeof body.userId === 'string' ? body.userId : undefined;
  const times = typeof body.times === 'number' ? body.times : undefined;
  try {
    simulator.setScenario(body.name, { userId, times });
  } catch (error) {
    return sendJson(res, 400, { error: error instanceof Error ? error.message : 'invalid scenario' });
  }
  sendJson(res, 200, { ok: true, name: body.name, userId, times });
}
