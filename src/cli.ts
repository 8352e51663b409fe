#!/usr/bin/env node
/**
 * @module cli
 * The command line (contract.md "Operator surfaces"): serve (default), check, doctor, add-account,
 * demo, simulator, --help, --version. Settings come from the environment, an optional --config file
 * and a few flags; the environment wins.
 */
import { readFileSync, realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig, type Config, type Settings } from './config.ts';

const packageJson = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };

const usage = `kimi-free-api ${packageJson.version} — an OpenAI-compatible gateway for your own Kimi web accounts

Usage: kimi-free-api [command] [options]

Commands:
  serve                 start the gateway (default)
  check                 check every configured account and print a table
  doctor                run the protocol steps against Kimi and report what broke
  add-account [TEXT]    add an account from a token, cookie, localStorage JSON or "Copy as cURL" (argument or stdin)
  add-account --qr      add an account by scanning a QR code with the Kimi app
  demo                  start the upstream simulator and a gateway on it (no Kimi account needed)
  simulator             start only the upstream simulator

Options:
  --config FILE         JSON file of settings (same names as the environment; the environment wins)
  --port N              port to listen on (PORT)
  --host HOST           address to listen on (HOST)
  --record DIR          doctor: save the redacted wire exchange as fixtures
  --qr                  add-account: log in with a QR code shown in the terminal
  -h, --help            show this help
  -v, --version         print the version

Settings are environment variables; see the README's configuration table.`;

export async function runCli(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        config: { type: 'string' },
        port: { type: 'string' },
        host: { type: 'string' },
        record: { type: 'string' },
        qr: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'v' },
      },
    });
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n\n${usage}\n`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(`${usage}\n`);
    return 0;
  }
  if (values.version) {
    process.stdout.write(`${packageJson.version}\n`);
    return 0;
  }
  const [command = 'serve', ...rest] = positionals;
  const overrides: Partial<Record<keyof Settings, string>> = {};
  if (values.port) overrides.PORT = values.port;
  if (values.host) overrides.HOST = values.host;

  const load = (extraEnv: NodeJS.ProcessEnv = {}): Config => loadConfig({ env: { ...env, ...extraEnv }, configFile: values.config, overrides });
  try {
    switch (command) {
      case 'serve': {
        const { startGateway } = await import('./main.ts');
        await startGateway(load(), { handleSignals: true, version: packageJson.version });
        return -1;
      }
      case 'simulator': {
        const { runSimulatorCommand } = await import('./cli-demo.ts');
        await runSimulatorCommand(values.port ? Number(values.port) : 8100);
        return -1;
      }
      case 'demo': {
        const { runDemoCommand } = await import('./cli-demo.ts');
        await runDemoCommand((extra) => load(extra), packageJson.version);
        return -1;
      }
      case 'check': {
        const { runCheckCommand } = await import('./cli-accounts.ts');
        return await runCheckCommand(load());
      }
      case 'add-account': {
        const { runAddAccountCommand, runQrLoginCommand } = await import('./cli-accounts.ts');
        return values.qr ? await runQrLoginCommand(load()) : await runAddAccountCommand(load(), rest.join(' '));
      }
      case 'doctor': {
        const { runDoctorCommand } = await import('./cli-doctor.ts');
        return await runDoctorCommand(load(), { recordDirectory: values.record });
      }
      default:
        process.stderr.write(`Unknown command "${command}".\n\n${usage}\n`);
        return 2;
    }
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`Configuration error: ${error.message}\n`);
      return 2;
    }
    throw error;
  }
}

function isEntryPoint(): boolean {
  try {
    return Boolean(process.argv[1]) && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url);
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  runCli(process.argv.slice(2)).then(
    (code) => {
      if (code >= 0) process.exitCode = code;
    },
    (error: unknown) => {
      process.stderr.write(`kimi-free-api failed: ${error instanceof Error ? error.message : String(error)}\n`);
      process.exitCode = 1;
    },
  );
}
