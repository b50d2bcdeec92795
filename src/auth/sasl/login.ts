/**
 * LOGIN (draft-murchison-sasl-login): the server asks `Username:` then `Password:`, each answer a
 * UTF-8 string. A client may send the user name as initial response (curl with --sasl-ir).
 * Plaintext: allowed only under R-S14's policy.
 */
import { badPassword, challenge, decodeUtf8, failure, type Mechanism } from './mechanism.js';

export const login: Mechanism = {
  name: 'LOGIN',
  plaintext: true,
  usable: () => true,
  start(env) {
    let user: string | undefined;
    return {
      async step(response) {
        if (user === undefined) {
          if (response === undefined) return challenge('Username:');
          const name = decodeUtf8(response);
          if (name === undefined || name === '') return failure('invalid user name', undefined, true);
          user = name;
          return challenge('Password:');
        }
        const password = response === undefined ? undefined : decodeUtf8(response);
        if (password === undefined || password === '') return failure('invalid password', user, true);
        const record = await env.verifyPassword(user, password);
        return record === undefined ? badPassword(user, password) : { kind: 'success', record };
      },
    };
  },
};
