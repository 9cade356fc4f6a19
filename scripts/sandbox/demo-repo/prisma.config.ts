// Prisma 6 with its JavaScript engine and the node-postgres driver adapter:
// `prisma migrate status` and `prisma migrate deploy` then need no native
// engine download, so they run where the worker has no internet.
import { defineConfig } from 'prisma/config';
import { PrismaPg } from '@prisma/adapter-pg';

export default defineConfig({
  engine: 'js',
  schema: 'prisma/schema.prisma',
  experimental: { adapter: true },
  adapter: async () => new PrismaPg({ connectionString: process.env.DATABASE_URL }),
});
