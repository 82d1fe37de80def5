// PLACEHOLDER: the language helper replaces this file with the language server entry.
export {};
