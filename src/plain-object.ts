/**
 * @module plain-object
 * The one test for "a JSON object" (not null, not an array) that parsed upstream answers, stored state and
 * tool arguments are checked with before their fields are read.
 */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
