// The inline seam VS Code uses (vscode.DebugAdapterInlineImplementation): DAP messages passed as objects through
// handleMessage / onDidSendMessage, with no stream and no process. The same session object register.ts creates.
import { expect, it } from 'vitest';
import type { DebugProtocol } from '@vscode/debugprotocol';
import { RaspDebugSession } from '../../client/src/debug/session';
import { fixture } from './harness';

it('runs a launch, a breakpoint stop and a variables request through handleMessage', async () => {
  const session = new RaspDebugSession();
  const received: DebugProtocol.ProtocolMessage[] = [];
  const waiters: { match: (m: DebugProtocol.ProtocolMessage) => boolean; done: (m: DebugProtocol.ProtocolMessage) => void }[] = [];
  const subscription = session.onDidSendMessage((m) => {
    const message = m as DebugProtocol.ProtocolMessage;
    received.push(message);
    for (const w of [...waiters]) {
      if (w.match(message)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.done(message);
      }
    }
  });
  const waitFor = <T extends DebugProtocol.ProtocolMessage>(match: (m: DebugProtocol.ProtocolMessage) => boolean): Promise<T> => {
    const earlier = received.find(match);
    if (earlier) return Promise.resolve(earlier as T);
    return new Promise((done) => waiters.push({ match, done: (m) => done(m as T) }));
  };
  let seq = 1;
  const request = async <T extends DebugProtocol.Response>(command: string, args?: unknown): Promise<T> => {
    const id = seq++;
    session.handleMessage({ seq: id, type: 'request', command, arguments: args } as DebugProtocol.Request);
    return waitFor<T>((m) => m.type === 'response' && (m as DebugProtocol.Response).request_seq === id);
  };
  const isEvent = (name: string) => (m: DebugProtocol.ProtocolMessage) => m.type === 'event' && (m as DebugProtocol.Event).event === name;

  try {
    const init = await request<DebugProtocol.InitializeResponse>('initialize', { adapterID: 'rasp', pathFormat: 'path', linesStartAt1: true, columnsStartAt1: true });
    expect(init.body?.supportsConfigurationDoneRequest).toBe(true);
    const program = fixture('previous.rasp');
    const launched = request('launch', { program, input: '<bos> c a' });
    await waitFor(isEvent('initialized'));
    const bps = await request<DebugProtocol.SetBreakpointsResponse>('setBreakpoints', { source: { path: program }, breakpoints: [{ line: 11 }] });
    expect(bps.body.breakpoints[0]).toMatchObject({ verified: true, line: 11 });
    await request('configurationDone');
    expect((await launched).success).toBe(true);
    const stopped = await waitFor<DebugProtocol.StoppedEvent>(isEvent('stopped'));
    expect(stopped.body.reason).toBe('breakpoint');
    const scopes = await request<DebugProtocol.ScopesResponse>('scopes', { frameId: 1 });
    const values = await request<DebugProtocol.VariablesResponse>('variables', { variablesReference: scopes.body.scopes[0].variablesReference });
    const a1 = values.body.variables.find((v) => v.name === 'a1')!;
    const rows = await request<DebugProtocol.VariablesResponse>('variables', { variablesReference: a1.variablesReference });
    expect(rows.body.variables.map((r) => `${r.name} = ${r.value}`)).toEqual(['0: "<bos>" = "<bos>" 1', '1: "c" = "<bos>" 1', '2: "a" = "c" 1']);
    await request('continue', { threadId: 1 });
    await waitFor(isEvent('terminated'));
    const output = received.filter(isEvent('output')).map((m) => (m as DebugProtocol.OutputEvent).body.output);
    expect(output).toContain('prediction: <bos> <bos> c\n');
  } finally {
    subscription.dispose();
    session.dispose();
  }
});
