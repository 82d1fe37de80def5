// PLACEHOLDER: the extension helper replaces this file.
export function activate(): void {}
export function deactivate(): void {}
