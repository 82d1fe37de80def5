// Test harness for the RASP debug adapter: a loopback TCP server running one RaspDebugSession per connection,
// and small helpers over @vscode/debugadapter-testsupport's DebugClient (which speaks real DAP over the socket).
import { createServer, type AddressInfo, type Server } from 'node:net';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DebugClient } from '@vscode/debugadapter-testsupport';
import type { DebugProtocol } from '@vscode/debugprotocol';
import { RaspDebugSession } from '../../client/src/debug/session';

export const FIXTURES = resolve(dirname(fileURLToPath(import.meta.url)), 'fixtures');
export const fixture = (name: string): string => resolve(FIXTURES, name);

export class AdapterServer {
  private server: Server | undefined;
  port = 0;

  async start(): Promise<void> {
    this.server = createServer((socket) => {
      const session = new RaspDebugSession();
      session.setRunAsServer(true);
      session.start(socket, socket);
    });
    await new Promise<void>((done) => this.server!.listen(0, '127.0.0.1', done));
    this.port = (this.server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    await new Promise<void>((done) => this.server?.close(() => done()) ?? done());
  }

  async client(): Promise<DebugClient> {
    // Runtime and executable are unused: start(port) connects to the running server instead of spawning.
    const dc = new DebugClient('node', 'unused', 'rasp');
    await dc.start(this.port);
    return dc;
  }
}

/** Resolves with the next event of a type, failing after `ms` (DebugClient has no timeouts in server mode). */
export function nextEvent<T extends DebugProtocol.Event>(dc: DebugClient, type: string, ms = 20_000): Promise<T> {
  return new Promise<T>((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`no '${type}' event within ${ms} ms`)), ms);
    dc.once(type, (e: DebugProtocol.Event) => {
      clearTimeout(timer);
      ok(e as T);
    });
  });
}

/** Collects every output event from now on. */
export function collectOutput(dc: DebugClient): { text: (category?: string) => string } {
  const events: DebugProtocol.OutputEvent[] = [];
  dc.on('output', (e: DebugProtocol.OutputEvent) => events.push(e));
  return {
    text: (category) =>
      events
        .filter((e) => category === undefined || e.body.category === category)
        .map((e) => e.body.output)
        .join(''),
  };
}

export interface LaunchOptions {
  program: string;
  input?: string;
  stopOnEntry?: boolean;
  model?: string;
  breakpoints?: number[];
}

/**
 * The DAP start-up sequence as VS Code runs it: initialize, launch, and on `initialized` the breakpoints and
 * configurationDone. Resolves with the breakpoint response (when breakpoints were given).
 */
export async function launch(dc: DebugClient, options: LaunchOptions): Promise<DebugProtocol.SetBreakpointsResponse | undefined> {
  const { breakpoints, ...args } = options;
  let response: DebugProtocol.SetBreakpointsResponse | undefined;
  await Promise.all([
    nextEvent(dc, 'initialized').then(async () => {
      if (breakpoints) {
        response = await dc.setBreakpointsRequest({
          source: { path: options.program },
          breakpoints: breakpoints.map((line) => ({ line })),
        });
      }
      await dc.configurationDoneRequest();
    }),
    dc.launch(args),
  ]);
  return response;
}

export async function stackFrames(dc: DebugClient): Promise<DebugProtocol.StackFrame[]> {
  return (await dc.stackTraceRequest({ threadId: 1 })).body.stackFrames;
}

export async function scopes(dc: DebugClient, frameId: number): Promise<DebugProtocol.Scope[]> {
  return (await dc.scopesRequest({ frameId })).body.scopes;
}

export async function children(dc: DebugClient, ref: number): Promise<DebugProtocol.Variable[]> {
  return (await dc.variablesRequest({ variablesReference: ref })).body.variables;
}

/** Walks the Variables tree from a scope of the top frame along names, e.g. ['a1', '3: "c"']. */
export async function variableAt(dc: DebugClient, scopeName: string, path: string[], frameIndex = 0): Promise<DebugProtocol.Variable> {
  const frames = await stackFrames(dc);
  const scope = (await scopes(dc, frames[frameIndex].id)).find((s) => s.name === scopeName);
  if (!scope) throw new Error(`no scope '${scopeName}'`);
  let ref = scope.variablesReference;
  let found: DebugProtocol.Variable | undefined;
  for (const name of path) {
    const vars = await children(dc, ref);
    found = vars.find((v) => v.name === name);
    if (!found) throw new Error(`no variable '${name}' among ${vars.map((v) => v.name).join(', ')}`);
    ref = found.variablesReference;
  }
  return found!;
}

export async function scopeVariables(dc: DebugClient, scopeName: string, frameIndex = 0): Promise<DebugProtocol.Variable[]> {
  const frames = await stackFrames(dc);
  const scope = (await scopes(dc, frames[frameIndex].id)).find((s) => s.name === scopeName);
  if (!scope) throw new Error(`no scope '${scopeName}'`);
  return children(dc, scope.variablesReference);
}
