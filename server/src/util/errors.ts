// Errors the user can act on (bad file, bad option, bad input). The CLI exits 1 on these and 2 on anything else;
// the language server and the extension show their message as is.
export class UserError extends Error {
  constructor(
    message: string,
    /** The file the problem is in, when there is one; prefixed to the message. */
    readonly file?: string,
  ) {
    super(file ? `${file}: ${message}` : message);
    this.name = 'UserError';
  }
}

/** Thrown when a long operation is cancelled (Ctrl-C, a cancel button, an LSP cancellation). */
export class CancelledError extends Error {
  constructor(message = 'cancelled') {
    super(message);
    this.name = 'CancelledError';
  }
}
