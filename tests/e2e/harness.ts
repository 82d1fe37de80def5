// The real-VS-Code tier's machinery: installs what is missing (scripts/e2e-setup.sh), packages the .vsix, installs
// it into a fresh code-server (own extensions and user-data folders), serves it on 127.0.0.1 and drives Debian's
// Chromium with playwright-core. stop() always ends both.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { chromium, type Browser, type Frame, type Locator, type Page } from 'playwright-core';

export const ROOT = path.resolve(__dirname, '..', '..');
export const SHOTS = path.join(ROOT, 'tests', 'e2e', 'screenshots');

export interface Tools {
  codeServer: string;
  node24: string;
  chromium: string;
}

export function setupTools(): Tools {
  const out = execFileSync('bash', [path.join(ROOT, 'scripts', 'e2e-setup.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const kv = Object.fromEntries(out.split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
  if (!kv.CODE_SERVER || !kv.NODE24 || !kv.CHROMIUM) throw new Error(`e2e-setup.sh printed no tool paths:\n${out}`);
  return { codeServer: kv.CODE_SERVER, node24: kv.NODE24, chromium: kv.CHROMIUM };
}

export function packageVsix(): string {
  const vsix = path.join(ROOT, 'dist', 'rasp-decompiler.vsix');
  execFileSync('npm', ['run', 'package'], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] });
  if (!fs.existsSync(vsix)) throw new Error(`npm run package wrote no ${vsix}`);
  return vsix;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

async function waitForHttp(url: string, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    try {
      const res = await fetch(url);
      if (res.status < 500) return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 300));
  }
  throw new Error(`${url} did not answer within ${ms} ms`);
}

export interface Session {
  page: Page;
  work: string;
  workspace: string;
  userData: string;
  stop(): Promise<void>;
  /** Tail of the extension host log, for failure messages. */
  extHostLog(): string;
}

export async function startVsCode(
  tools: Tools,
  vsix: string,
  options: { workspace: string; settings: Record<string, unknown>; work: string },
): Promise<Session> {
  const { work, workspace } = options;
  const userData = path.join(work, 'user-data');
  const extensions = path.join(work, 'extensions');
  fs.mkdirSync(path.join(userData, 'User'), { recursive: true });
  fs.mkdirSync(extensions, { recursive: true });
  fs.writeFileSync(
    path.join(userData, 'User', 'settings.json'),
    JSON.stringify(
      {
        'workbench.startupEditor': 'none',
        'workbench.tips.enabled': false,
        'security.workspace.trust.enabled': false,
        'telemetry.telemetryLevel': 'off',
        'extensions.autoUpdate': false,
        'extensions.autoCheckUpdates': false,
        'chat.disableAIFeatures': true,
        'workbench.colorTheme': 'Default Dark Modern',
        'editor.hover.delay': 300,
        'window.commandCenter': false,
        'git.openRepositoryInParentFolders': 'never',
        'files.autoSave': 'off',
        // Hovers open below the line, where tall ones (heatmaps) have room.
        'editor.hover.above': false,
        'git.enabled': false,
        'workbench.secondarySideBar.defaultVisibility': 'hidden',
        'chat.commandCenter.enabled': false,
        ...options.settings,
      },
      null,
      2,
    ),
  );
  const env = { ...process.env, PATH: `${path.dirname(tools.node24)}:${process.env.PATH ?? ''}`, npm_config_nodedir: undefined };
  const common = ['--user-data-dir', userData, '--extensions-dir', extensions, '--config', path.join(work, 'config.yaml')];
  execFileSync(tools.codeServer, [...common, '--install-extension', vsix, '--force'], { env, stdio: ['ignore', 'inherit', 'inherit'] });

  const port = await freePort();
  const server: ChildProcess = spawn(
    tools.codeServer,
    [...common, '--auth', 'none', '--bind-addr', `127.0.0.1:${port}`, '--disable-telemetry', '--disable-update-check', '--disable-workspace-trust', '--disable-getting-started-override', workspace],
    { env, detached: true, stdio: ['ignore', fs.openSync(path.join(work, 'code-server.log'), 'w'), fs.openSync(path.join(work, 'code-server.err'), 'w')] },
  );
  let browser: Browser | undefined;
  const stop = async () => {
    await browser?.close().catch(() => undefined);
    browser = undefined;
    if (server.pid && server.exitCode === null) {
      try {
        process.kill(-server.pid, 'SIGTERM');
      } catch {
        // already gone
      }
      await new Promise((r) => setTimeout(r, 1500));
      try {
        process.kill(-server.pid, 'SIGKILL');
      } catch {
        // stopped on SIGTERM
      }
    }
  };
  try {
    await waitForHttp(`http://127.0.0.1:${port}/healthz`, 60_000);
    browser = await chromium.launch({
      executablePath: tools.chromium,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-dev-shm-usage'],
    });
    const page = await browser.newPage({ viewport: { width: 1500, height: 950 } });
    await page.goto(`http://127.0.0.1:${port}/?folder=${encodeURIComponent(workspace)}`);
    await page.waitForSelector('.monaco-workbench', { timeout: 90_000 });
    return {
      page,
      work,
      workspace,
      userData,
      stop,
      extHostLog: () => {
        const logs = path.join(userData, 'logs');
        const found: string[] = [];
        const walk = (d: string) => {
          for (const f of fs.existsSync(d) ? fs.readdirSync(d) : []) {
            const p = path.join(d, f);
            if (fs.statSync(p).isDirectory()) walk(p);
            else if (/exthost|RASP|rasp/i.test(f)) found.push(p);
          }
        };
        walk(logs);
        return found.map((f) => `--- ${f}\n${fs.readFileSync(f, 'utf8').split('\n').slice(-60).join('\n')}`).join('\n');
      },
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

export async function shot(page: Page, name: string): Promise<void> {
  fs.mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`) });
}

/** Runs a command through the command palette, by its title as shown there. */
export async function runCommand(page: Page, title: string): Promise<void> {
  const input = page.locator('.quick-input-widget input');
  // The palette can close again right after opening (focus moving to a notification or a finished job's editor):
  // reopen it and retry a few times before giving up.
  for (let attempt = 1; ; attempt++) {
    try {
      await page.keyboard.press('F1');
      await input.waitFor({ state: 'visible' });
      await input.fill(`>${title}`, { timeout: 10_000 });
      break;
    } catch (err) {
      if (attempt >= 3) throw err;
      await page.keyboard.press('Escape');
      await page.waitForTimeout(500);
    }
  }
  const row = page.locator('.quick-input-list .monaco-list-row', { hasText: title }).first();
  // Commands appear once the extension's contributions are scanned (slow on a busy machine): retype until listed.
  const end = Date.now() + 60_000;
  while (!(await row.isVisible()) && Date.now() < end) {
    await page.waitForTimeout(1000);
    await input.fill(`>${title} `);
    await input.fill(`>${title}`);
  }
  await row.waitFor({ state: 'visible', timeout: 5_000 });
  await page.keyboard.press('Enter');
}

/** The webview frame (VS Code nests each webview in two iframes) whose page shows `selector`. */
export async function findFrame(page: Page, selector: string, ms = 30_000): Promise<Frame> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    for (const f of page.frames()) {
      // The workbench itself has canvases (minimap); only webview documents count.
      if (f === page.mainFrame()) continue;
      try {
        if (await f.locator(selector).count()) return f;
      } catch {
        // frame navigated away meanwhile
      }
    }
    await page.waitForTimeout(250);
  }
  throw new Error(`no webview shows ${selector} within ${ms} ms`);
}

/** Opens a file through the explorer (expanding folders on the way). */
export async function openInExplorer(page: Page, relPath: string): Promise<void> {
  const parts = relPath.split('/');
  for (let i = 0; i < parts.length; i++) {
    const row = page.locator(`.explorer-folders-view .monaco-list-row[aria-label="${parts[i]}"]`).first();
    await row.waitFor({ state: 'visible', timeout: 20_000 });
    const expanded = await row.getAttribute('aria-expanded');
    if (i < parts.length - 1) {
      if (expanded !== 'true') await row.click();
    } else {
      await row.click();
    }
  }
}

/** The text editor of the active editor group (panels such as the debug console hold monaco editors too). */
export const ACTIVE_EDITOR = '.editor-group-container.active .editor-instance .monaco-editor';

/** Moves the cursor to a 1-based line; returns where that line's text starts on screen. */
export async function gotoLine(page: Page, line: number): Promise<{ x: number; y: number; height: number; charWidth: number }> {
  await page.keyboard.press('Control+G');
  const input = page.locator('.quick-input-widget input');
  await input.waitFor({ state: 'visible' });
  await input.fill(`:${line}`);
  await page.keyboard.press('Enter');
  await page.waitForTimeout(400);
  return cursorLine(page);
}

/** Where the cursor's line starts on screen in the focused editor. */
export async function cursorLine(page: Page): Promise<{ x: number; y: number; height: number; charWidth: number }> {
  const editor = page.locator(ACTIVE_EDITOR).first();
  // The line highlight is drawn only while the editor has focus: give it focus back if a widget took it.
  await page.locator('.quick-input-widget').waitFor({ state: 'hidden', timeout: 5000 }).catch(() => undefined);
  const current = editor.locator('.view-overlays .current-line').first();
  if (!(await current.count())) await editor.locator('.view-lines').first().focus().catch(() => undefined);
  await current.waitFor({ state: 'attached', timeout: 5000 });
  // Right after a reveal the highlight can be attached but not laid out yet: poll briefly, refocusing the editor.
  let lineBox = await current.boundingBox();
  let textBox = await editor.locator('.view-lines').first().boundingBox();
  for (let i = 0; i < 20 && (!lineBox || !textBox); i++) {
    await page.waitForTimeout(250);
    await editor.locator('.view-lines').first().focus().catch(() => undefined);
    lineBox = await current.boundingBox();
    textBox = await editor.locator('.view-lines').first().boundingBox();
  }
  if (!lineBox || !textBox) throw new Error('the cursor line is not rendered');
  // Character width from any rendered line (monospace), so offsets land on the intended word.
  const charWidth = await editor.locator('.view-lines .view-line').evaluateAll((lines) => {
    for (const l of lines) {
      const span = l.querySelector('span');
      const text = span?.textContent ?? '';
      if (span && text.length > 8) return span.getBoundingClientRect().width / text.length;
    }
    return 8.4;
  });
  return { x: textBox.x, y: lineBox.y, height: lineBox.height, charWidth };
}

/** Hovers a line at a character offset and returns the hover's text once it shows. */
export async function hoverAt(page: Page, at: { x: number; y: number; height: number; charWidth?: number }, charOffset = 1, expect?: RegExp): Promise<{ text: string; hover: Locator }> {
  await page.mouse.move(at.x + 400, at.y - 200);
  await page.waitForTimeout(300);
  const charWidth = at.charWidth ?? 8.4;
  await page.mouse.move(at.x + charWidth * charOffset + 2, at.y + at.height / 2);
  const hover = page.locator('.monaco-hover:not(.hidden)').first();
  await hover.waitFor({ state: 'visible', timeout: 15_000 });
  // The server's part and the extras arrive together; wait for the expected text when given.
  const end = Date.now() + 10_000;
  let text = await hover.innerText();
  while (expect && !expect.test(text) && Date.now() < end) {
    await page.waitForTimeout(250);
    text = await hover.innerText();
  }
  return { text, hover };
}
