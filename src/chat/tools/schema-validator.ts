/**
 * @module chat/tools/schema-validator
 * JSON Schema checks with ajv: compiling a client's tool schema (a failure is the client's 400) and
 * validating the model's arguments against it. Lenient about what real clients send (unknown keywords,
 * formats, a `$schema` of draft-07 or 2020-12); compiled validators are cached by schema text because
 * agents send the same tool list on every step.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { Ajv2020 } from 'ajv/dist/2020.js';
import type { JsonSchema } from './tool-events.ts';

export type ArgumentCheck = { isValid: true } | { isValid: false; problem: string };

export interface CompiledSchema {
  check(value: unknown): ArgumentCheck;
}

const options = { strict: false, allErrors: true, validateFormats: false, logger: false } as const;
const draft07 = new Ajv(options);
const draft2020 = new Ajv2020(options);
const cache = new Map<string, CompiledSchema & { release(): void }>();
const CACHE_LIMIT = 500;

/** Throws an Error whose message says what is wrong when the schema does not compile. */
export function compileSchema(schema: JsonSchema): CompiledSchema {
  const key = JSON.stringify(schema);
  const cached = cache.get(key);
  if (cached) {
    cache.delete(key);
    cache.set(key, cached);
    return cached;
  }
  const compiled = compileWithDraft(schema);
  cache.set(key, compiled);
  if (cache.size > CACHE_LIMIT) {
    const [oldestKey, oldest] = cache.entries().next().value as [string, { release(): void }];
    cache.delete(oldestKey);
    oldest.release();
  }
  return compiled;
}

function compileWithDraft(schema: JsonSchema): CompiledSchema & { release(): void } {
  if (typeof schema === 'boolean') return toCompiled(draft07.compile(schema), () => undefined);
  const declared = typeof schema.$schema === 'string' ? schema.$schema : '';
  // `$id`s would collide across requests in the shared instance, so they are removed with `$schema`.
  const { $schema: _ignored, $id: _id, ...rest } = schema;
  const ajv = /2019-09|2020-12/.test(declared) ? draft2020 : draft07;
  // ajv keeps every compiled schema keyed by its object; release it when it leaves our cache (or fails).
  const release = () => void ajv.removeSchema(rest);
  try {
    return toCompiled(ajv.compile(rest), release);
  } catch (error) {
    release();
    throw error;
  }
}

function toCompiled(validate: ValidateFunction, release: () => void): CompiledSchema & { release(): void } {
  return {
    release,
    check(value) {
      if (validate(value)) return { isValid: true };
      return { isValid: false, problem: describeErrors(validate.errors ?? []) };
    },
  };
}

function describeErrors(errors: readonly ErrorObject[]): string {
  return errors
    .slice(0, 5)
    .map((error) => `${error.instancePath || 'the arguments'} ${error.message ?? 'is invalid'}${error.keyword === 'additionalProperties' ? ` ("${String(error.params.additionalProperty)}")` : ''}`)
    .join(', ');
}
