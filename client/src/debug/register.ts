// Registers the `rasp` debugger with VS Code: the adapter runs inline in the extension host (no process to
// start, the engine is already loaded), or as out/debugAdapter.cjs when `rasp.debug.separateProcess` is set /
// RASP_DEBUG_ADAPTER=process (useful to debug the adapter itself). The only debugger file importing vscode.
import * as vscode from 'vscode';
import { DEBUG_TYPE, RaspDebugSession } from './session';

const LANGUAGE_ID = 'rasp';

class RaspAdapterFactory implements vscode.DebugAdapterDescriptorFactory {
  constructor(private readonly context: vscode.ExtensionContext) {}

  createDebugAdapterDescriptor(): vscode.ProviderResult<vscode.DebugAdapterDescriptor> {
    const separate =
      process.env.RASP_DEBUG_ADAPTER === 'process' || vscode.workspace.getConfiguration('rasp').get<boolean>('debug.separateProcess') === true;
    if (separate) {
      const adapter = vscode.Uri.joinPath(this.context.extensionUri, 'out', 'debugAdapter.cjs').fsPath;
      // The extension host's executable runs as plain Node with this variable (no separate Node install needed).
      return new vscode.DebugAdapterExecutable(process.execPath, [adapter], { env: { ELECTRON_RUN_AS_NODE: '1' } });
    }
    return new vscode.DebugAdapterInlineImplementation(new RaspDebugSession());
  }
}

class RaspConfigurationProvider implements vscode.DebugConfigurationProvider {
  provideDebugConfigurations(): vscode.DebugConfiguration[] {
    return [
      {
        type: DEBUG_TYPE,
        request: 'launch',
        name: 'Debug RASP program',
        program: '${file}',
        stopOnEntry: true,
      },
    ];
  }

  /** F5 without a launch.json: debug the active .rasp file on its header's example input. */
  resolveDebugConfiguration(folder: vscode.WorkspaceFolder | undefined, config: vscode.DebugConfiguration): vscode.ProviderResult<vscode.DebugConfiguration> {
    if (!config.type && !config.request && !config.name) {
      const editor = vscode.window.activeTextEditor;
      if (editor?.document.languageId === LANGUAGE_ID) {
        config.type = DEBUG_TYPE;
        config.name = 'Debug RASP program';
        config.request = 'launch';
        config.program = '${file}';
        config.stopOnEntry = true;
      }
    }
    if (!config.program) {
      void vscode.window.showInformationMessage('Open a .rasp file (or set "program" in launch.json) to debug it.');
      return undefined;
    }
    // Relative `program`/`model` paths mean the workspace folder (the inline adapter's own cwd is arbitrary).
    if (!config.cwd && folder) config.cwd = folder.uri.fsPath;
    return config;
  }
}

export function registerDebugger(context: vscode.ExtensionContext): void {
  context.subscriptions.push(
    vscode.debug.registerDebugAdapterDescriptorFactory(DEBUG_TYPE, new RaspAdapterFactory(context)),
    vscode.debug.registerDebugConfigurationProvider(DEBUG_TYPE, new RaspConfigurationProvider()),
    // Offered in the Run view's "select and start" list next to the launch.json entries.
    vscode.debug.registerDebugConfigurationProvider(
      DEBUG_TYPE,
      { provideDebugConfigurations: () => new RaspConfigurationProvider().provideDebugConfigurations() },
      vscode.DebugConfigurationProviderTriggerKind.Dynamic,
    ),
  );
}
