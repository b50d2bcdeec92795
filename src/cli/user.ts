/**
 * `poplar user add|passwd|del|list` (R-X8, R-X17, R-X19): manage the user directory the
 * configuration names (`auth.directory`: the passwd-file `auth.users_file`, or PostgreSQL). With
 * `auth.directory = "ldap"` add, passwd and del refuse in one line (users live in the directory)
 * and list lists the directory's users. A running server picks the changes up without a restart. The password is
 * stored as a slow hash, with the extra credentials the enabled mechanisms need (`auth.mechanisms`,
 * `auth.apop`): SCRAM-SHA-256 keys, the NT hash, the shared secret.
 */
import { Command } from 'commander';
import { makeCredentials, needsFor } from '../auth/credentials.js';
import type { ManagedDirectory } from '../auth/directory.js';
import type { Config } from '../config/load.js';
import { checkUserName, CliError, configFrom, withConfigOptions, type ConfigOptions } from './common.js';
import { readNewPassword } from './prompt.js';

interface PasswordOptions extends ConfigOptions {
  passwordStdin?: boolean;
}

/** The slow hash, plus what the enabled mechanisms and APOP need (auth/credentials.ts). */
function credentialsFor(config: Config, pw: string): ReturnType<typeof makeCredentials> {
  return makeCredentials(pw, { cost: config.auth.scrypt_cost, needs: needsFor(config.auth.mechanisms, config.auth.apop) });
}

/**
 * The directory from the composition root (compose.ts), loaded on demand. With an LDAP
 * directory (R-X19) users are added, changed and removed there, never by poplar.
 */
async function directory(config: Config): Promise<ManagedDirectory> {
  if (config.auth.directory === 'ldap') {
    throw new CliError(`users live in the LDAP directory (auth.directory = "ldap", ${config.ldap.url}): add, change and remove them there`);
  }
  return (await import('./compose.js')).createDirectory(config);
}

async function exists(dir: ManagedDirectory, name: string): Promise<boolean> {
  return (await dir.list()).some((u) => u.name === name);
}

async function add(name: string, opts: PasswordOptions): Promise<void> {
  checkUserName(name);
  const config = configFrom(opts);
  const dir = await directory(config);
  if (await exists(dir, name)) throw new CliError(`user "${name}" already exists (use "poplar user passwd" to change the password)`);
  const pw = await readNewPassword(name, opts.passwordStdin === true);
  const made = await credentialsFor(config, pw);
  await dir.add(name, made.password, made.credentials);
  process.stdout.write(`user "${name}" added to ${dir.where}\n`);
}

async function passwd(name: string, opts: PasswordOptions): Promise<void> {
  checkUserName(name);
  const config = configFrom(opts);
  const dir = await directory(config);
  if (!(await exists(dir, name))) throw new CliError(`no such user "${name}" in ${dir.where}`);
  const pw = await readNewPassword(name, opts.passwordStdin === true);
  const made = await credentialsFor(config, pw);
  await dir.setPassword(name, made.password, made.credentials);
  process.stdout.write(`password of "${name}" changed\n`);
}

/** Takes any name found in the file, so a line with a name the rule refuses can be removed too. */
async function del(name: string, opts: ConfigOptions): Promise<void> {
  const config = configFrom(opts);
  const dir = await directory(config);
  await dir.remove(name);
  const where = config.storage.backend === 'maildir' ? ` in ${config.storage.maildir_path.replaceAll('%u', () => name)}` : '';
  process.stdout.write(`user "${name}" removed; their mail${where} was not deleted\n`);
}

/** Every user of `auth.directory` (the users file, or the LDAP directory's `user_filter` with `%u` as `*`). */
async function list(opts: ConfigOptions): Promise<void> {
  const config = configFrom(opts);
  const { users, where } = await (await import('./compose.js')).withDirectory(config, async (d) => ({
    users: await d.list(),
    where: config.auth.directory === 'ldap' ? `the LDAP directory ${config.ldap.url}` : 'where' in d ? String(d.where) : config.auth.users_file,
  }));
  if (users.length === 0) process.stderr.write(`no users in ${where}\n`);
  for (const u of users) {
    const extra = [u.maildrop === undefined ? '' : `maildrop=${u.maildrop}`, u.grants.length ? `grants=${u.grants.join(',')}` : ''];
    process.stdout.write([u.name, ...extra.filter((e) => e !== '')].join('\t') + '\n');
  }
}

export function userCommand(): Command {
  const user = new Command('user').description('add, remove and list users, set passwords');
  const stdinOption = ['--password-stdin', 'read the password from the first line of stdin'] as const;
  withConfigOptions(user.command('add').description('add a user').argument('<name>').option(...stdinOption))
    .action((name: string, opts: PasswordOptions) => add(name, opts));
  withConfigOptions(user.command('passwd').description("set a user's password").argument('<name>').option(...stdinOption))
    .action((name: string, opts: PasswordOptions) => passwd(name, opts));
  withConfigOptions(user.command('del').description('remove a user (their mail is kept)').argument('<name>'))
    .action((name: string, opts: ConfigOptions) => del(name, opts));
  withConfigOptions(user.command('list').description('list users and their grants'))
    .action((opts: ConfigOptions) => list(opts));
  return user;
}
