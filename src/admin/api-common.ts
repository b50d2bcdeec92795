/**
 * What every admin API route shares (R-X21): the error value and its JSON shape
 * (`{ error: { code, message } }`, the code stable for scripts), the JSON schemas the OpenAPI
 * document is made from, and pagination (`limit` + opaque `cursor`, the answer's `next`).
 */
export const ERROR_CODES = [
  'TOKEN_MISSING', 'TOKEN_INVALID', 'VALIDATION', 'BAD_CURSOR', 'NOT_FOUND', 'EXISTS', 'INVALID_NAME', 'READ_ONLY',
  'ALREADY_GRANTED', 'NOT_GRANTED', 'BUSY', 'UNAVAILABLE', 'INTERNAL',
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export const errorSchema = {
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: { code: { type: 'string', enum: [...ERROR_CODES] }, message: { type: 'string' } },
    },
  },
} as const;

/** The error answers a route may give, for its `response` schema. */
export function errors(...statuses: number[]): Record<number, typeof errorSchema> {
  return Object.fromEntries([401, ...statuses].map((s) => [s, errorSchema]));
}

export const MAX_PAGE = 500;
export const DEFAULT_PAGE = 50;

export const pageQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    limit: { type: 'integer', minimum: 1, maximum: MAX_PAGE, default: DEFAULT_PAGE, description: 'items per page' },
    cursor: { type: 'string', maxLength: 512, description: 'the `next` of the previous page' },
  },
} as const;

export interface PageQuery {
  limit: number;
  cursor?: string;
}

/** A page of items, with `next` the cursor of the following page (null on the last); `extra`: more properties. */
export function pageOf(items: object, description: string, extra: Record<string, object> = {}): object {
  return {
    type: 'object',
    description,
    required: ['items', 'next'],
    properties: { items: { type: 'array', items }, next: { type: ['string', 'null'] }, ...extra },
  };
}

/** R-X16: the property of an answer gathered from the workers when one of them did not answer in time. */
export const partialProperty = {
  partial: {
    type: 'boolean',
    description: 'present (true) when a worker process did not answer in time: the answer lacks what that worker holds',
  },
} as const;

/**
 * One page of `all`, ordered by `key` (unique per item): the items after the cursor's key. The
 * cursor is the last key of the previous page, base64url-encoded.
 */
export function paginate<T>(all: readonly T[], key: (t: T) => string, q: PageQuery): { items: T[]; next: string | null } {
  let after: string | undefined;
  if (q.cursor !== undefined) {
    after = Buffer.from(q.cursor, 'base64url').toString('utf8');
    if (after === '' || Buffer.from(after, 'utf8').toString('base64url') !== q.cursor) {
      throw new ApiError(400, 'BAD_CURSOR', 'cursor is not one this API returned');
    }
  }
  const sorted = [...all].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
  const rest = after === undefined ? sorted : sorted.filter((t) => key(t) > after);
  const items = rest.slice(0, q.limit);
  const last = items[items.length - 1];
  return { items, next: rest.length > q.limit && last !== undefined ? Buffer.from(key(last), 'utf8').toString('base64url') : null };
}

export const nameParam = {
  type: 'object',
  required: ['name'],
  properties: { name: { type: 'string', minLength: 1, maxLength: 255 } },
} as const;
