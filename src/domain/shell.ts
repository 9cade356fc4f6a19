/**
 * Shell quoting for the commands the status and the notifications print
 * (`deployctl approve <id> ...`): a person pastes them into a terminal, so
 * every argument reaches deployctl as one word and runs nothing else,
 * whatever it holds. POSIX single quotes, in which nothing is special; a
 * single quote inside is closed, escaped and reopened. A few lines rather
 * than a library: the workflows print these commands, so it must bundle into
 * workflow code and stay deterministic.
 */

/** Words that need no quotes: what an id, a flag or an S3 key is made of. */
const PLAIN = /^[A-Za-z0-9._\-/:=@,+%]+$/;

export function shellQuote(arg: string): string {
  return PLAIN.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** One command line from its arguments, each quoted. */
export function shellCommand(args: readonly string[]): string {
  return args.map(shellQuote).join(' ');
}
