/** How the release's migrations run (config.database.migrations): one entry per migrator. */
import { z } from 'zod';
import { command, duration, envName } from './config-fields';
import { regexProblem } from './migration-status';

/** Set by the migrator itself; a config that names them would point the tool elsewhere. */
const RESERVED_MIGRATION_ENV = ['DATABASE_URL'];
const migrationEnvName = envName.refine(
  (n) => !RESERVED_MIGRATION_ENV.includes(n),
  'DATABASE_URL is set by the migrator (the configured database)',
);

/** config.database.migrations: one entry per migrator (src/activities/database/migrators). */
export const migrationsSchema = z
  .discriminatedUnion('mode', [
    z.strictObject({ mode: z.literal('builtin'), directory: z.string().min(1).max(1024).default('migrations') }),
    z
      .strictObject({
        mode: z.literal('command'),
        /** Run in the release checkout with DATABASE_URL in its environment, e.g. [npx, prisma, migrate, deploy]. */
        command,
        /** Read-only status command, e.g. [npx, prisma, migrate, status]; without one the command runs every time. */
        statusCommand: command.optional(),
        /** A line of the status output that names one pending migration (first group, else the line). */
        pendingPattern: z
          .string()
          .min(1)
          .max(512)
          .refine((p) => regexProblem(p) === undefined, 'a regular expression, e.g. ^(\\d+_\\w+)$')
          .optional(),
        /** Exit codes of the status command, besides 0, that mean "pending" (Prisma: 1; dbmate --exit-code: 1). */
        pendingExitCodes: z.array(z.number().int().min(1).max(255)).max(16).default([]),
        /** Non-secret variables for the command (e.g. NODE_PATH, CHECKPOINT_DISABLE). */
        env: z.record(migrationEnvName, z.string().max(4096)).default({}),
        /** Variables copied from the worker's environment (e.g. a token the tool needs); nothing else is passed. */
        passEnv: z.array(migrationEnvName).max(64).default([]),
        timeout: duration('migration command timeout').default(30 * 60_000),
      })
      .refine((m) => !m.statusCommand || m.pendingPattern, {
        message:
          'statusCommand needs pendingPattern: a regular expression matching a line that names one pending migration',
        path: ['pendingPattern'],
      }),
  ])
  .default({ mode: 'builtin', directory: 'migrations' });
