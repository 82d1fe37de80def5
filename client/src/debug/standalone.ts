// PLACEHOLDER: the debugger helper replaces this file with the standalone debug adapter entry.
export {};
