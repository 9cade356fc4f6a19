/**
 * The Temporal UI as people use it, in a real browser: Debian's chromium
 * driven by playwright-core, against the sandbox's Temporal cluster and its
 * UI server when it runs one (`npm run sandbox -- up --temporal cluster`),
 * otherwise a dev server with its Web UI (UI 2.54 in the `temporal` CLI 1.9
 * the project fetches). A person starts
 * `deployWorkflow` from the UI's "Start Workflow" form by typing
 * `{"version":"1.0.1"}`, watches it run, reads the canary's `status` query
 * in the Queries tab while it waits at its approval gate, approves with the
 * `approve` signal from the deploy workflow's page (the deploy workflow
 * forwards it to its canary child) and sees the deployment completed. The
 * activities are the typed fakes: this test is about the UI path, not the
 * adapters (test/e2e/deploy-*.test.ts run the real ones).
 *
 * What the UI needs, found by exploring UI 2.54.1:
 * - The dev server serves the UI with its write actions on: /api/v1/settings
 *   reports DisableWriteActions, StartWorkflowDisabled and
 *   WorkflowSignalDisabled false. A self-run `temporalio/ui` container turns
 *   them off with TEMPORAL_DISABLE_WRITE_ACTIONS=true (or per action,
 *   TEMPORAL_START_WORKFLOW_DISABLED / TEMPORAL_WORKFLOW_SIGNAL_DISABLED); the
 *   test checks the settings first so that a disabled form fails with that
 *   reason rather than with a missing button.
 * - "Start Workflow" on the workflows list is a link to a form (Workflow ID,
 *   Task Queue, Workflow Type, Input "Data" as a JSON editor). Starting shows a
 *   "Workflow started successfully" notice that links to the workflow.
 * - The signal form is under "More Actions" -> "Send a Signal"; its signal
 *   list comes from the workflow's own metadata (the SDK answers
 *   `__temporal_workflow_metadata`), so approve, abort, pause, resume and
 *   promote are offered by name.
 * - The JSON editors reformat their text when they lose focus, which moves
 *   the buttons below them: the test blurs an editor before clicking on.
 * - The SDK's default for the dev server is `ui: false` (its typings say the
 *   UI comes with `uiPort`; the code does not), so the test asks for `ui: true`.
 *
 * Screenshots of every step go to .local/ui-test/ (git-ignored), and the
 * page's HTML too when a step fails.
 */
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { chromium, type BrowserContext, type Locator, type Page } from 'playwright-core';
import { devServerDynamicConfigArgs } from '../../scripts/temporal-dynamic-config';
import { SEARCH_ATTRIBUTE_KEYS } from '../../src/search-attributes';
import type { canaryWorkflow } from '../../src/workflows/canary';
import type { deployWorkflow } from '../../src/workflows/deploy';
import { statusQuery } from '../../src/workflows/messages';
import { fakeActivities } from '../helpers/fake-activities';
import { testPlan } from '../helpers/plan';
import { freePort } from '../helpers/ports';
import { sandboxEnv } from '../helpers/sandbox';
import { workflowBundle } from '../helpers/temporal';
import { REPO_ROOT, toolPath } from '../helpers/tools';
import { waitFor } from '../helpers/wait';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];
const SHOTS = path.join(REPO_ROOT, '.local', 'ui-test');
/**
 * The worker's task queue in deploy.config.yaml: what a person types in the form. On the sandbox's
 * shared cluster a queue of the test's own, so that no other worker there takes its tasks.
 */
let TASK_QUEUE = 'deployments';

let env: TestWorkflowEnvironment;
let uiUrl: string;
let browser: BrowserContext | undefined;
let userDataDir: string | undefined;
let shots = 0;

async function screenshot(page: Page, name: string): Promise<void> {
  shots++;
  await page.screenshot({ path: path.join(SHOTS, `${String(shots).padStart(2, '0')}-${name}.png`), fullPage: true });
}

/** The UI refreshes a running workflow's page by itself; a reload now and then covers a missed refresh. */
async function waitForExecutionStatus(page: Page, status: string, timeoutMs: number): Promise<void> {
  const badge = page.getByTestId('execution-status');
  let lastReload = Date.now();
  await waitFor(
    async () => {
      if ((await badge.textContent())?.trim() === status) return true;
      if (Date.now() - lastReload > 5000) {
        lastReload = Date.now();
        await page.reload();
      }
      return false;
    },
    timeoutMs,
    250,
  );
}

/** Types JSON into one of the UI's code editors, then moves the focus away so that it settles. */
async function typeJson(editor: Locator, json: string, elsewhere: Locator): Promise<void> {
  await editor.fill(json);
  await elsewhere.click();
}

/** Runs the query chosen in the Queries tab (the first one, `status`) and returns the text it shows. */
async function runStatusQuery(page: Page): Promise<string> {
  await page.getByRole('tab', { name: 'Queries' }).click();
  await page.getByRole('button', { name: /^(Run|Refresh) Query$/ }).click();
  const result = page.locator('.cm-content').filter({ hasText: '"workflowId"' });
  await result.first().waitFor({ timeout: 10_000 });
  return (await result.first().textContent()) ?? '';
}

/** A dev server of the test's own with its Web UI; returns the UI's address. */
async function devServerWithUi(): Promise<string> {
  const uiPort = await freePort();
  env = await TestWorkflowEnvironment.createLocal({
    server: {
      executable: { type: 'existing-path', path: toolPath('cli') },
      ip: '127.0.0.1',
      ui: true,
      uiPort,
      searchAttributes: SEARCH_ATTRIBUTE_KEYS,
      // Loopback only: without the last flag the UI fetches a news feed from the internet.
      extraArgs: [
        '--log-level',
        'error',
        '--ui-ip',
        '127.0.0.1',
        '--ui-disable-news-fetch',
        ...devServerDynamicConfigArgs(),
      ],
    },
  });
  return `http://127.0.0.1:${uiPort}`;
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM))
    throw new Error(
      `no browser at ${CHROMIUM}: install Debian's chromium (apt-get install chromium) or set CHROMIUM_PATH`,
    );
  rmSync(SHOTS, { recursive: true, force: true });
  mkdirSync(SHOTS, { recursive: true });
  // The sandbox runs a Temporal cluster (`up --temporal cluster`): its UI server, pointed at its frontend.
  const cluster = sandboxEnv();
  if (cluster.TEMPORAL_ADDRESS && cluster.TEMPORAL_UI_URL) {
    env = await TestWorkflowEnvironment.createFromExistingServer({
      address: cluster.TEMPORAL_ADDRESS,
      namespace: 'default',
    });
    uiUrl = cluster.TEMPORAL_UI_URL;
    TASK_QUEUE = `deployments-ui-${randomUUID().slice(0, 8)}`;
  } else {
    uiUrl = await devServerWithUi();
  }
  userDataDir = mkdtempSync(path.join(os.tmpdir(), 'deploy-ui-test-'));
  browser = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1400, height: 1000 },
  });
  // Loopback only: whatever else the page asks for is refused.
  await browser.route('**/*', (route) => {
    const host = new URL(route.request().url()).hostname;
    return host === '127.0.0.1' || host === 'localhost' ? route.continue() : route.abort();
  });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
  await env?.teardown();
});

test('a person starts a deployment, approves its canary and reads its status in the Temporal UI', async () => {
  const settings = (await (await fetch(`${uiUrl}/api/v1/settings`)).json()) as Record<string, unknown>;
  expect({
    DisableWriteActions: settings.DisableWriteActions,
    StartWorkflowDisabled: settings.StartWorkflowDisabled,
    WorkflowSignalDisabled: settings.WorkflowSignalDisabled,
  }).toEqual({
    DisableWriteActions: false,
    StartWorkflowDisabled: false,
    WorkflowSignalDisabled: false,
  });

  // The fake resolvePlan answers this plan whatever the input: a canary that waits for approval before 100%.
  const plan = {
    ...testPlan({ version: '1.0.1', canary: { approval: 'before-full', soak: '2s', analysisInterval: '1s' } }),
    environment: 'ui-test',
    searchAttributes: true,
  };
  const fake = fakeActivities({ plan });
  const worker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue: TASK_QUEUE,
    workflowBundle: await workflowBundle(),
    activities: fake.activities,
  });
  const page = browser!.pages()[0] ?? (await browser!.newPage());
  const workflowId = `deploy-ui-test-${Date.now()}`;
  const canaryId = `${workflowId}-canary`;
  const deploy = env.client.workflow.getHandle<typeof deployWorkflow>(workflowId);
  const canary = env.client.workflow.getHandle<typeof canaryWorkflow>(canaryId);

  await worker.runUntil(async () => {
    try {
      // 1. The workflows list and its "Start Workflow" form, filled as a person would.
      await page.goto(`${uiUrl}/namespaces/default/workflows`);
      await page.getByRole('link', { name: 'Start Workflow' }).waitFor();
      await screenshot(page, 'workflows-list');
      await page.getByRole('link', { name: 'Start Workflow' }).click();
      await page.getByLabel('Workflow ID').fill(workflowId);
      await page.getByLabel('Task Queue').fill(TASK_QUEUE);
      await page.getByLabel('Workflow Type').fill('deployWorkflow');
      // Once the task queue field loses focus the form looks it up: the worker is polling it.
      await page.getByText('Task Queue is Active').waitFor({ timeout: 10_000 });
      await typeJson(
        page.getByRole('textbox', { name: 'Data' }),
        '{"version":"1.0.1"}',
        page.getByRole('heading', { name: 'Start Workflow' }),
      );
      await screenshot(page, 'start-form');
      await page.getByRole('button', { name: 'Start Workflow' }).click();

      // 2. Started: the notice links to the workflow, which is running.
      await page.getByRole('link', { name: 'Workflow started successfully' }).click();
      await page.waitForURL((u) => u.pathname.includes(`/workflows/${workflowId}/`), { timeout: 15_000 });
      await waitForExecutionStatus(page, 'Running', 15_000);
      expect((await deploy.describe()).type).toBe('deployWorkflow');
      await screenshot(page, 'deploy-running');

      // 3. The canary child waits at its gate before 100%; the deploy's status names it.
      await waitFor(async () => (await canary.query(statusQuery)).phase === 'awaiting-approval', 30_000, 300);
      expect((await deploy.query(statusQuery)).children).toContain(canaryId);
      // The same answer in the child's Queries tab, as a person would read it.
      const { runId: canaryRunId } = await canary.describe();
      await page.goto(`${uiUrl}/namespaces/default/workflows/${canaryId}/${canaryRunId}/history`);
      await waitForExecutionStatus(page, 'Running', 15_000);
      const waiting = await runStatusQuery(page);
      expect(waiting).toContain(`"workflowId": "${canaryId}"`);
      expect(waiting).toContain('"phase": "awaiting-approval"');
      await screenshot(page, 'canary-status-query');

      // 4. Approve from the deploy workflow's page: More Actions -> Send a Signal.
      const { runId } = await deploy.describe();
      await page.goto(`${uiUrl}/namespaces/default/workflows/${workflowId}/${runId}/history`);
      await waitForExecutionStatus(page, 'Running', 15_000);
      await page.getByRole('button', { name: 'More Actions' }).click();
      await page.getByRole('menuitem', { name: 'Send a Signal' }).click();
      const dialog = page.getByRole('dialog', { name: 'Send a Signal' });
      await dialog.getByTestId('signal-select-button').click();
      // The UI lists the workflow's own signals (from the SDK's workflow metadata).
      const approve = dialog.getByRole('option', { name: 'approve', exact: true });
      await approve.waitFor({ timeout: 10_000 });
      const offered = (await dialog.getByRole('option').allTextContents()).map((s) => s.trim());
      expect(offered).toEqual(expect.arrayContaining(['approve', 'abort', 'pause', 'resume', 'promote']));
      await approve.click();
      await typeJson(
        dialog.getByRole('textbox', { name: 'Data' }),
        '{"by":"ui-tester"}',
        dialog.getByText('Single JSON payload supported.'),
      );
      await screenshot(page, 'approve-signal-form');
      await dialog.getByRole('button', { name: 'Submit' }).click();
      await page.getByText('Workflow signaled.').first().waitFor({ timeout: 10_000 });

      // 5. Completed, and the deploy's own status query says so.
      await waitForExecutionStatus(page, 'Completed', 30_000);
      await screenshot(page, 'deploy-completed');
      const final = await runStatusQuery(page);
      // (The editor draws only the lines in view: check those near the top.)
      expect(final).toContain(`"workflowId": "${workflowId}"`);
      expect(final).toContain('"phase": "succeeded"');
      await screenshot(page, 'deploy-status-query');
    } catch (err) {
      await screenshot(page, 'failure').catch(() => undefined);
      writeFileSync(path.join(SHOTS, 'failure.html'), await page.content().catch(() => ''));
      throw err;
    }
  });

  // What the workflows recorded: the deploy succeeded and the canary's gate was passed by the UI's signal.
  const result = await deploy.result();
  expect(result.outcome).toBe('succeeded');
  expect(result.status.ignoredSignals).toEqual([]);
  const canaryResult = await canary.result();
  expect(canaryResult.outcome).toBe('promoted');
  expect(canaryResult.status.approvals).toEqual([
    expect.objectContaining({ signal: 'approve', by: 'ui-tester', reason: 'approval to move traffic to 100%' }),
  ]);
  expect(fake.weights).toEqual([5, 25, 50, 100]);
}, 90_000);
