/**
 * Four projects that `npm test` runs together:
 *  unit         pure domain logic, no services
 *  workflows    workflow logic on the time-skipping server (typed fake activities)
 *               and on the dev server
 *  integration  adapters against the real sandbox services
 *  e2e          whole deployments on the dev server + sandbox
 */
const tsJest = ['ts-jest', { diagnostics: false }];
// @kubernetes/client-node 1.x and a few of its dependencies ship only ES
// modules; jest's CommonJS runtime needs them turned into CommonJS.
const ESM_PACKAGES = ['@kubernetes/client-node', 'openid-client', 'oauth4webapi', 'jose', 'jsonpath-plus'];
const esmToCjs = [
  'babel-jest',
  { babelrc: false, configFile: false, plugins: ['@babel/plugin-transform-modules-commonjs'] },
];

const common = {
  setupFiles: ['<rootDir>/test/helpers/setup-runtime.ts'],
  testEnvironment: 'node',
  transform: { '^.+\\.ts$': tsJest, '^.+\\.m?js$': esmToCjs },
  transformIgnorePatterns: [`/node_modules/(?!(${ESM_PACKAGES.join('|')})/)`],
  moduleFileExtensions: ['ts', 'js', 'json'],
  // The sandbox's data and the demo platform's sources are not part of this package.
  modulePathIgnorePatterns: [
    '<rootDir>/.sandbox/',
    '<rootDir>/.local/',
    '<rootDir>/scripts/sandbox/demo-repo/',
    '<rootDir>/dist/',
  ],
};

module.exports = {
  // One test file at a time: the integration and e2e suites share one sandbox and
  // reset it (and the reliability test kills its own server and worker). On a
  // 2-core machine jest picks this anyway; on a bigger one it keeps results true.
  maxWorkers: 1,
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/test/unit/**/*.test.ts'] },
    {
      ...common,
      displayName: 'workflows',
      testMatch: ['<rootDir>/test/workflows/**/*.test.ts', '<rootDir>/test/replay/**/*.test.ts'],
    },
    { ...common, displayName: 'integration', testMatch: ['<rootDir>/test/integration/**/*.test.ts'] },
    { ...common, displayName: 'e2e', testMatch: ['<rootDir>/test/e2e/**/*.test.ts'] },
    // The full reliability run (`npm run test:reliability`, which sets RELIABILITY_RUNS): long, so not part of `npm test`.
    ...(process.env.RELIABILITY_RUNS
      ? [{ ...common, displayName: 'reliability', testMatch: ['<rootDir>/test/reliability/**/*.test.ts'] }]
      : []),
  ],
};
