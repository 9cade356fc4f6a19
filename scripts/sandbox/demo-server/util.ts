/** True for a plain JSON-like object (not null, not an array). */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** One line of at most ~300 characters for a log, whatever was thrown. */
export function describeError(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  // ApiException messages embed the whole response body; the first line says enough.
  const firstLine = message.split('\n')[0];
  return firstLine.length > 300 ? `${firstLine.slice(0, 300)}...` : firstLine;
}
