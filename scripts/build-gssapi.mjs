#!/usr/bin/env node
// npm's `install` step: builds the GSS-API acceptor (native/gssapi, SASL GSSAPI, R-X20) with
// node-gyp against MIT Kerberos (Debian: libkrb5-dev, plus g++, make and python3). A machine
// without them still installs poplar: the build failure is printed and AUTH GSSAPI stays off
// (auth/sasl/gssapi-native.ts reports the addon missing if `auth.mechanisms` names GSSAPI).
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const gyp = process.env.npm_config_node_gyp;
const [cmd, args] = gyp ? [process.execPath, [gyp]] : ['node-gyp', []];
const r = spawnSync(cmd, [...args, 'rebuild', '--directory', join(root, 'native/gssapi')], { stdio: 'inherit' });
if (r.status !== 0) {
  console.warn('poplar: the GSSAPI addon (native/gssapi) did not build; AUTH GSSAPI is unavailable. ' +
    'It needs libkrb5-dev, g++, make and python3 (apt-get install libkrb5-dev build-essential python3).');
}
