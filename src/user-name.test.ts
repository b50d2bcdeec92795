import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isValidMailboxName } from './storage/mail-store.js';
import { isValidUserName, printableName, userNameProblem } from './user-name.js';

const BAD = [
  '', 'a:b', 'a/b', 'a\\b', 'a,b', 'a%b', 'a?b', 'a*b', 'a"b', 'a<b', 'a>b', 'a|b',
  '-alice', '.hidden', '..', '#x', 'a b', 'a\tb', ' alice', 'alice ', 'a\u00a0b', 'a\u3000b',
  'a\u0000b', 'a\u007fb', 'a\u0085b', 'a\u202eb', 'a\u2066b', 'a\u200fb', '\ufeffalice', 'a\ud800b',
  'x'.repeat(256), '\u00e9'.repeat(128),
];
const GOOD = ['alice', 'alice@example.org', 'a.b-c_d+e', 'chloé', 'Émile', '山田', 'x'.repeat(255), '\u00e9'.repeat(127), 'a-', 'a.', 'bob$', 'O\'Brien'];

describe('the user name rule', () => {
  it('R-X8 refuses each character the users file, the Maildir store or the login syntax reserves (regression: user add took % ? * " < > | and a leading -, which the store refused)', () => {
    for (const bad of BAD) assert.notEqual(userNameProblem(bad), undefined, printableName(bad));
  });

  it('R-X5 accepts UTF-8 names up to 255 octets, compared as given', () => {
    for (const good of GOOD) assert.equal(userNameProblem(good), undefined, good);
  });

  it('is the rule the mail stores apply to maildrop names (one rule, not two)', () => {
    for (const name of [...BAD, ...GOOD]) assert.equal(isValidMailboxName(name), isValidUserName(name), printableName(name));
  });

  it('names the offending character, and error messages escape invisible ones', () => {
    assert.match(userNameProblem('a%b')!, /contains "%"/);
    assert.match(userNameProblem('-x')!, /starts with/);
    assert.equal(printableName('a\u202eb'), '"a\\u202eb"');
    assert.equal(printableName('a\nb'), '"a\\nb"');
  });
});
