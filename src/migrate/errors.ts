/**
 * An expected failure of import or export: a source or target that is missing, unreadable, of the
 * wrong kind, a symbolic link, or already there. Its message is one line for the CLI, naming the path.
 */
export class MigrateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MigrateError';
  }
}
