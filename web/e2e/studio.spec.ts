// Studio pages against a real `tinycats serve` (scripts/studio_e2e_server.sh, started by
// playwright.config.ts on STUDIO_PORT): a tiny generator job from #new-job (an invalid config
// first: the inline error names the key), live curves and predictions on its run page, Cancel
// of a long job from #runs, and #monitor.

import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test, expect, type APIRequestContext, type Page, type TestInfo } from '@playwright/test';
import { SHOTS, watchErrors } from './helpers';

export const STUDIO_PORT = Number(process.env.STUDIO_PORT ?? 4180);
const STUDIO = `http://127.0.0.1:${STUDIO_PORT}`;
const CACHE_FILE = path.join(SHOTS, 'studio-cache-path.txt');

/** Left out only on an explicit STUDIO_E2E=0; otherwise a missing server fails the tests. */
function needServer() {
  test.skip(process.env.STUDIO_E2E === '0', 'STUDIO_E2E=0');
  expect(existsSync(CACHE_FILE), `${CACHE_FILE} missing: the studio server (scripts/studio_e2e_server.sh) did not start`).toBe(true);
}

// Long enough (≈10–30 s on 2 cores) to watch points arrive live; predictions every 250 steps.
const STEPS = 1500;
const LOG_EVERY = 10;

function generatorConfig(cache: string, steps: number, extra = ''): string {
  return [
    '[data]',
    `cache = ${JSON.stringify(cache)}`,
    'exclude = ["other"]',
    '[model]',
    'preset = "tiny"',
    '[train]',
    `steps = ${steps}`,
    'batch_size = 4',
    `log_every = ${LOG_EVERY}`,
    'checkpoint_every = 500',
    '[predictions]',
    'enabled = true',
    'every = 250',
    'sample_steps = 4',
    extra,
  ].join('\n');
}

async function shot(page: Page, testInfo: TestInfo, name: string) {
  const file = path.join(SHOTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  await testInfo.attach(name, { path: file, contentType: 'image/png' });
}

/** The server must offer an endpoint this test needs. */
async function needs(request: APIRequestContext, url: string) {
  const r = await request.get(`${STUDIO}${url}`);
  expect(r.ok(), `${url}: HTTP ${r.status()} ${await r.text()}`).toBe(true);
}

const cachePath = () => readFileSync(CACHE_FILE, 'utf8').trim();

test.describe('studio (tinycats serve)', () => {
  test.beforeEach(() => needServer());

  test('new generator job: invalid config named inline, then live curves and predictions', async ({ page, request }, testInfo) => {
    test.setTimeout(300_000);
    await needs(request, '/api/jobs');
    const errors = watchErrors(page);
    const cache = cachePath();

    await page.goto(`${STUDIO}/#new-job`);
    await page.getByTestId('job-kind').selectOption('generator');
    // The default generator config arrives from the server ([ema] is generator-only).
    await expect(page.getByTestId('job-config')).toHaveValue(/\[ema\]/);
    await expect(page.getByTestId('job-config')).toBeEditable();

    // Invalid: train.steps = 0 → the server's 422 error is shown inline and names the key.
    await page.getByTestId('job-config').fill(generatorConfig(cache, 0));
    await page.getByTestId('job-validate').click();
    await expect(page.getByTestId('config-error')).toContainText('train.steps');
    await page.getByTestId('job-start').click();
    await expect(page.getByTestId('config-error')).toContainText('train.steps');
    await shot(page, testInfo, 'studio-new-job-invalid');

    // Valid: the Predictions panel follows the text (predictions.every = 250).
    await page.getByTestId('job-config').fill(generatorConfig(cache, STEPS));
    await expect(page.getByTestId('pred-every')).toHaveValue('250');
    await expect(page.getByTestId('pred-enabled')).toBeChecked();
    await page.getByTestId('job-name').fill('e2e-gen');
    await page.getByTestId('job-validate').click();
    await expect(page.getByTestId('config-valid')).toBeVisible();
    await expect(page.getByTestId('config-error')).toHaveCount(0);
    await page.getByTestId('job-start').click();

    // The page polls the job until it has a run, then moves to the run page.
    await expect(page).toHaveURL(/#run\/\d+$/, { timeout: 60_000 });
    const runId = Number(/#run\/(\d+)$/.exec(page.url())![1]);
    await expect(page.getByTestId('ws-state')).toHaveText('open', { timeout: 30_000 });
    const points = page.getByTestId('points-train/loss');
    await expect(points).toBeVisible({ timeout: 60_000 });
    const count = async () => Number(await points.innerText());
    const first = await count();
    const statusAtFirst = (await page.getByTestId('run-status').innerText()).trim();
    testInfo.annotations.push({ type: 'live', description: `first seen: ${first} points, run ${statusAtFirst}` });
    // Live points arrive while the socket is open; every logged step ends up in the curve.
    await expect.poll(count, { timeout: 120_000 }).toBeGreaterThan(1);
    if (statusAtFirst === 'running') await expect.poll(count, { timeout: 120_000 }).toBeGreaterThan(first);
    await expect(page.getByTestId('ws-state')).toHaveText('open');
    await expect.poll(count, { timeout: 180_000 }).toBeGreaterThanOrEqual(STEPS / LOG_EVERY);
    const curve = page.getByTestId('curve-train/loss');
    await expect(curve).toHaveAttribute('points', /\d,\d.* \d/);
    expect(Number(await page.getByTestId('ws-seq').innerText())).toBeGreaterThan(0);

    // Predictions: one card per breed for the latest rendered step.
    const cards = page.getByTestId('pred-card');
    await expect(cards.first()).toBeVisible({ timeout: 120_000 });
    expect(await cards.count()).toBeGreaterThanOrEqual(1);
    await expect(page.getByTestId('pred-epoch')).toBeVisible();
    const img = cards.first().locator('img');
    if ((await img.count()) > 0) {
      await expect.poll(() => img.evaluate((i: HTMLImageElement) => i.complete && i.naturalWidth > 0), { timeout: 30_000 }).toBe(true);
    }
    await cards.first().click();
    await expect(page.getByTestId('pred-history')).toBeVisible();
    await expect(page.getByTestId('pred-history').locator('tbody tr').first()).toBeVisible();

    // The metric picker lists the live keys.
    await expect(page.getByTestId('metric-key').locator('option', { hasText: 'lr' })).toHaveCount(1);
    await shot(page, testInfo, 'studio-run');

    // The run is listed on #runs.
    await page.goto(`${STUDIO}/#runs`);
    await expect(page.getByTestId(`run-row-${runId}`)).toContainText('generator');
    await shot(page, testInfo, 'studio-runs');
    // The two 422s of the invalid config are expected; WebSocket reconnect noise is not an error.
    expect(errors.filter((e) => !/WebSocket|status of 422/.test(e))).toEqual([]);
  });

  test('Cancel a long job from the runs page', async ({ page, request }, testInfo) => {
    test.setTimeout(180_000);
    await needs(request, '/api/jobs');
    const r = await request.post(`${STUDIO}/api/jobs`, { data: { kind: 'generator', config: generatorConfig(cachePath(), 100_000), name: 'e2e-long' } });
    expect(r.status(), await r.text()).toBe(201);
    const { job } = (await r.json()) as { job: { id: number } };

    await page.goto(`${STUDIO}/#runs`);
    const status = page.getByTestId(`job-status-${job.id}`);
    await expect(status).toHaveText(/queued|running/, { timeout: 30_000 });
    // Let it start, so Cancel stops a live process (a queued job is cancelled too).
    await expect(status).toHaveText('running', { timeout: 60_000 });
    await page.getByTestId(`job-cancel-${job.id}`).click();
    await expect(status).toHaveText('cancelled', { timeout: 60_000 });
    await expect(page.getByTestId(`job-cancel-${job.id}`)).toHaveCount(0);
    await shot(page, testInfo, 'studio-job-cancelled');
    // The server agrees.
    const after = (await (await request.get(`${STUDIO}/api/jobs/${job.id}`)).json()) as { job: { status: string } };
    expect(after.job.status).toBe('cancelled');
  });

  test('runs table: filter, sort, select two runs and compare them', async ({ page, request }, testInfo) => {
    test.setTimeout(180_000);
    await needs(request, '/api/jobs');
    // Two short runs of our own, so the test stands alone.
    const ids: number[] = [];
    for (const [name, lr] of [['e2e-cmp-a', '4e-4'], ['e2e-cmp-b', '2e-3']]) {
      const config = generatorConfig(cachePath(), 40, `[optim]\nlr = ${lr}`);
      const r = await request.post(`${STUDIO}/api/jobs`, { data: { kind: 'generator', config, name } });
      expect(r.status(), await r.text()).toBe(201);
      ids.push(((await r.json()) as { job: { id: number } }).job.id);
    }
    const runIds: number[] = [];
    for (const id of ids) {
      await expect
        .poll(async () => ((await (await request.get(`${STUDIO}/api/jobs/${id}`)).json()) as { job: { status: string } }).job.status, { timeout: 120_000 })
        .toBe('finished');
      runIds.push(((await (await request.get(`${STUDIO}/api/jobs/${id}`)).json()) as { job: { run_id: number } }).job.run_id);
    }

    await page.goto(`${STUDIO}/#runs`);
    await page.getByTestId('runs-filter').fill('e2e-cmp');
    const rows = page.locator('[data-testid^="run-row-"]');
    await expect(rows).toHaveCount(2);
    // Sort by name, ascending then descending.
    await page.getByTestId('sort-name').click();
    await expect(rows.first()).toContainText('e2e-cmp-a');
    await page.getByTestId('sort-name').click();
    await expect(rows.first()).toContainText('e2e-cmp-b');
    await expect(page.getByTestId('runs-page')).toHaveText('1–2 of 2');

    await expect(page.getByTestId('compare')).toBeDisabled();
    for (const id of runIds) await page.getByTestId(`run-select-${id}`).check();
    await page.getByTestId('compare').click();
    await expect(page).toHaveURL(new RegExp(`#compare/${[...runIds].sort((a, b) => a - b).join(',')}$`));
    await expect(page.getByTestId('compare-key')).toHaveValue('train/loss');
    for (const id of runIds) await expect.poll(async () => Number(await page.getByTestId(`curve-run-${id}`).getAttribute('data-points')), { timeout: 30_000 }).toBeGreaterThan(1);
    await expect(page.getByTestId('compare-chart')).toContainText('e2e-cmp-a');
    await expect(page.getByTestId('compare-table').locator('tbody tr', { hasText: 'train/loss' })).toHaveCount(1);
    await shot(page, testInfo, 'studio-compare');
  });

  test('monitor shows CPU, memory, disk, GPU and a live CPU chart', async ({ page, request }, testInfo) => {
    await needs(request, '/api/system');
    await page.goto(`${STUDIO}/#monitor`);
    await expect(page.getByTestId('monitor-cpu')).toHaveText(/\d+(\.\d+)? %/, { timeout: 30_000 });
    await expect(page.getByTestId('monitor-mem')).toContainText('GiB');
    await expect(page.getByTestId('monitor-disk')).toContainText('free of');
    await expect(page.getByTestId('monitor-gpu')).toContainText('GPU');
    await expect(page.getByTestId('monitor-jobs')).toBeVisible();
    await expect(page.getByTestId('ws-state')).toHaveText('open', { timeout: 30_000 });
    // Snapshots arrive about every 2 s over the `system` channel: the chart grows.
    await expect.poll(async () => Number(await page.getByTestId('curve-cpu').getAttribute('data-points')), { timeout: 30_000 }).toBeGreaterThanOrEqual(2);
    await shot(page, testInfo, 'studio-monitor');
  });
});
