/**
 * The one factory of migrators: config.database.migrations.mode names the
 * migrator, this map builds it. It is the only code that looks at `mode`.
 * Adding a migrator: its file here, one line in MIGRATORS, its branch of the
 * `mode` union in domain/config.ts, its tests (the map's type refuses a
 * schema mode without a constructor).
 */
import { providerFactory } from '../../providers';
import { BuiltinMigrator } from './builtin';
import { CommandMigrator } from './command';
import type { MigrationsConfig, Migrator, MigratorDeps, MigratorFactory, MigratorName } from './migrator';

export type {
  MigrationOutcome,
  MigrationRelease,
  MigrationSession,
  MigrationState,
  MigrationsConfig,
  Migrator,
  MigratorDeps,
  MigratorFactory,
  MigratorName,
} from './migrator';

const MIGRATORS: { [K in MigratorName]: MigratorFactory<Extract<MigrationsConfig, { mode: K }>> } = {
  builtin: (config, deps) => new BuiltinMigrator(config, deps),
  command: (config, deps) => new CommandMigrator(config, deps),
};

/**
 * The migrator that config.database.migrations names. `injected` (from
 * DatabaseDeps.migrators) adds migrators or replaces built-in ones: the seam
 * a test registers a throwaway migrator through.
 */
export function createMigrator(
  config: MigrationsConfig,
  deps: MigratorDeps,
  injected: Readonly<Record<string, MigratorFactory>> = {},
): Migrator {
  // Each built-in factory takes only its own branch of the union; `mode` picked it, which TypeScript cannot follow.
  const builtin = MIGRATORS as unknown as Record<string, MigratorFactory>;
  return providerFactory('database.migrations.mode', config.mode, builtin, injected)(config, deps);
}
