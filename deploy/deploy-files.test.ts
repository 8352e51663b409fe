/**
 * The deployment files parse and agree with each other and with package.json (issue 6, issue 10):
 * the image runs `npm start`'s command, every file probes /ping, waits longer than SHUTDOWN_GRACE_MS
 * before killing, takes tokens from a secret, and points REDIS_URL at a Redis it defines.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parseYamlDocuments, type YamlValue } from '../scripts/yaml-subset.ts';
import { parseDockerfile } from '../scripts/lint-dockerfile.ts';

const root = new URL('../', import.meta.url);
const read = (path: string): string => readFileSync(new URL(path, root), 'utf8');

// The files are ours and their shape is what the assertions check, so reading them loosely is fine.
type Loose = any;
const yaml = (path: string): Loose[] => parseYamlDocuments(read(path)) as Loose[];

const envValue = (env: Array<{ name: string; value?: YamlValue }>, name: string): YamlValue | undefined =>
  env.find((entry) => entry.name === name)?.value;

test('the Dockerfile runs the same command as `npm start`', () => {
  const packageJson = JSON.parse(read('package.json')) as { scripts: { start: string } };
  const cmd = parseDockerfile(read('Dockerfile')).filter((instruction) => instruction.keyword === 'CMD').at(-1);
  assert.ok(cmd, 'Dockerfile has a CMD');
  assert.deepEqual(JSON.parse(cmd.args), packageJson.scripts.start.split(/\s+/));
  assert.deepEqual(JSON.parse(cmd.args), ['node', 'src/cli.ts', 'serve']);
});

test('the Dockerfile sets the contract defaults for a container and probes /ping on the exposed port', () => {
  const instructions = parseDockerfile(read('Dockerfile'));
  const env = instructions.filter((instruction) => instruction.keyword === 'ENV').map((instruction) => instruction.args).join(' ');
  assert.match(env, /\bHOST=0\.0\.0\.0\b/);
  assert.match(env, /\bPORT=8000\b/);
  assert.match(env, /\bSTATE_FILE=\/data\/state\.json\b/);
  assert.ok(instructions.some((instruction) => instruction.keyword === 'EXPOSE' && instruction.args === '8000'));
  assert.ok(instructions.some((instruction) => instruction.keyword === 'VOLUME' && instruction.args.includes('/data')));
  const healthcheck = instructions.find((instruction) => instruction.keyword === 'HEALTHCHECK');
  assert.match(healthcheck?.args ?? '', /\/ping/);
  const copied = instructions.filter((instruction) => instruction.keyword === 'COPY').map((instruction) => instruction.args).join('\n');
  for (const path of ['src', 'simulator', 'package.json']) assert.match(copied, new RegExp(`\\b${path}\\b`));
});

test('.dockerignore keeps secrets and local state out of the build context', () => {
  const lines = read('.dockerignore').split('\n').map((line) => line.trim()).filter((line) => line && !line.startsWith('#'));
  assert.equal(lines[0], '*', 'everything is excluded first');
  const reincluded = lines.filter((line) => line.startsWith('!')).map((line) => line.slice(1));
  assert.deepEqual(reincluded.sort(), ['package-lock.json', 'package.json', 'simulator', 'src']);
});

test('compose.yaml: gateway and redis, healthchecks, restart policy, env file, grace period', () => {
  const [compose] = yaml('compose.yaml');
  const { gateway, redis } = compose.services;
  assert.equal(gateway.environment.REDIS_URL, 'redis://redis:6379');
  assert.equal(redis.image, 'redis:7-alpine');
  assert.deepEqual(gateway.env_file, [{ path: '.env', required: false }]);
  assert.equal(gateway.depends_on.redis.condition, 'service_healthy');
  for (const service of [gateway, redis]) {
    assert.equal(service.restart, 'unless-stopped');
    assert.equal(service.healthcheck.test[0], 'CMD');
  }
  assert.match(gateway.healthcheck.test.join(' '), /127\.0\.0\.1:8000\/ping/);
  assert.deepEqual(gateway.ports, ['8000:8000']);
  const graceSeconds = Number(String(gateway.stop_grace_period).replace(/s$/, ''));
  assert.ok(graceSeconds * 1000 > Number(gateway.environment.SHUTDOWN_GRACE_MS), 'Docker waits longer than the gateway drains');
});

test('deploy/kubernetes.yaml: two probed, non-root, read-only replicas with a Secret and Redis', () => {
  const documents = yaml('deploy/kubernetes.yaml');
  const find = (kind: string, name: string): Loose => {
    const found = documents.find((document) => document.kind === kind && document.metadata.name === name);
    assert.ok(found, `${kind} ${name}`);
    return found;
  };
  const secret = find('Secret', 'kimi-free-api');
  assert.deepEqual(Object.keys(secret.stringData).sort(), ['API_KEYS', 'KIMI_TOKENS']);

  const deployment = find('Deployment', 'kimi-free-api');
  const pod = deployment.spec.template.spec;
  const [container] = pod.containers;
  assert.equal(deployment.spec.replicas, 2);
  assert.deepEqual(deployment.spec.selector.matchLabels, deployment.spec.template.metadata.labels);
  for (const probe of [container.readinessProbe, container.livenessProbe]) {
    assert.equal(probe.httpGet.path, '/ping');
    assert.equal(probe.httpGet.port, container.ports[0].name);
  }
  assert.equal(container.ports[0].containerPort, Number(envValue(container.env, 'PORT')));
  const preStopSeconds = Number(container.lifecycle.preStop.exec.command[1]);
  assert.ok(pod.terminationGracePeriodSeconds * 1000 > preStopSeconds * 1000 + Number(envValue(container.env, 'SHUTDOWN_GRACE_MS')),
    'the kubelet waits for the preStop sleep plus the drain');
  assert.equal(pod.securityContext.runAsNonRoot, true);
  assert.equal(container.securityContext.readOnlyRootFilesystem, true);
  assert.equal(container.securityContext.allowPrivilegeEscalation, false);
  assert.ok(container.resources.requests.memory && container.resources.limits.memory);
  const mounts = Object.fromEntries(container.volumeMounts.map((mount: Loose) => [mount.mountPath, mount.name]));
  for (const path of ['/tmp', '/data']) {
    const volume = pod.volumes.find((candidate: Loose) => candidate.name === mounts[path]);
    assert.ok(volume && 'emptyDir' in volume, `${path} is a writable emptyDir`);
  }
  for (const key of ['KIMI_TOKENS', 'API_KEYS']) {
    const ref = container.env.find((entry: Loose) => entry.name === key).valueFrom.secretKeyRef;
    assert.deepEqual(ref, { name: secret.metadata.name, key });
  }

  const service = find('Service', 'kimi-free-api');
  assert.deepEqual(service.spec.selector, deployment.spec.template.metadata.labels);
  assert.equal(service.spec.ports[0].targetPort, container.ports[0].name);

  const redisUrl = new URL(String(envValue(container.env, 'REDIS_URL')));
  const redisService = find('Service', redisUrl.hostname);
  const redisDeployment = find('Deployment', redisUrl.hostname);
  assert.equal(redisService.spec.ports[0].port, Number(redisUrl.port));
  assert.deepEqual(redisService.spec.selector, redisDeployment.spec.template.metadata.labels);
  assert.equal(redisDeployment.spec.template.spec.containers[0].image, 'redis:7-alpine');
  const claim = redisDeployment.spec.template.spec.volumes[0].persistentVolumeClaim.claimName;
  find('PersistentVolumeClaim', claim);
});

test('render.yaml: a Docker web service probed on /ping, secrets prompted, REDIS_URL from its Key Value', () => {
  const [blueprint] = yaml('render.yaml');
  const web = blueprint.services.find((service: Loose) => service.type === 'web');
  const store = blueprint.services.find((service: Loose) => service.type === 'keyvalue');
  assert.equal(web.runtime, 'docker');
  assert.equal(web.healthCheckPath, '/ping');
  const envVars = Object.fromEntries(web.envVars.map((entry: Loose) => [entry.key, entry]));
  assert.equal(envVars.KIMI_TOKENS.sync, false);
  assert.equal(envVars.API_KEYS.sync, false);
  assert.deepEqual(envVars.REDIS_URL.fromService, { type: 'keyvalue', name: store.name, property: 'connectionString' });
  assert.ok(web.maxShutdownDelaySeconds * 1000 > Number(envVars.SHUTDOWN_GRACE_MS.value));
  assert.ok(Array.isArray(store.ipAllowList), 'Render requires ipAllowList on Key Value');
  assert.equal(store.maxmemoryPolicy, 'noeviction');
});
