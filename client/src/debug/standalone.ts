// The RASP debug adapter as a separate process speaking DAP over stdin/stdout (or `--server=<port>` for a TCP
// listener); bundled to out/debugAdapter.cjs. The extension normally runs the same session inline.
import { DebugSession } from '@vscode/debugadapter';
import { RaspDebugSession } from './session';

DebugSession.run(RaspDebugSession);
